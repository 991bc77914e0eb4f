"""Tiny classify fixtures: synthetic two-class frames and honestly labelled random weights."""

from __future__ import annotations

import torch

from vigil_shared.schemas.jobs import ClassifySpec
from vigil_shared.schemas.manifests import WeightsProvenance
from vigil_shared.storage import sha256_hex
from vigil_shared.vision.catalog import architecture
from vigil_trainer.classify.data import ClassifyData
from vigil_trainer.weights import PretrainedWeights

SIZE = 32


def random_weights(arch: str = "efficientnet_lite0", seed: int = 0) -> PretrainedWeights:
    """A state dict of the architecture built with random weights: a real weights file in
    shape, NOT ImageNet weights; its provenance says so."""
    torch.manual_seed(seed)
    state = architecture(arch).build().state_dict()
    digest = sha256_hex(b"".join(v.numpy().tobytes() for v in state.values()))
    provenance = WeightsProvenance(
        name=f"{arch}/random-init-for-tests",
        source=f"tests: torchvision {arch}(weights=None), seed {seed}",
        sha256=digest,
    )
    return PretrainedWeights(state_dict=state, provenance=provenance)


def two_class_frames(n: int = 32, seed: int = 0) -> ClassifyData:
    """'abnormal' frames carry a bright square; 4 groups mixing both classes."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 120, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=g)
    labels = torch.tensor([i % 2 for i in range(n)])
    images[labels == 0, :, 8:24, 8:24] = 250
    groups = [f"clip{(i // 2) % 4}" for i in range(n)]
    return ClassifyData.from_tensors(
        images=images, labels=labels, groups=groups, classes=("abnormal", "normal")
    )


def tiny_spec(**overrides: object) -> ClassifySpec:
    base: dict[str, object] = {
        "name": "tiny",
        "task": "classify",
        "dataset": {"name": "tiny"},
        "architecture": "efficientnet_lite0",
        "image_size": SIZE,
        "hyper": {"epochs": 2, "batch_size": 8, "lr": 1e-3},
    }
    base.update(overrides)
    return ClassifySpec.model_validate(base)
