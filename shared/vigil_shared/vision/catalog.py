"""The architectures a classify job can fine-tune, and the network built around them.

Each entry knows how to build the ImageNet network (random weights: pretrained weights are
loaded by the caller, strictly, so a missing key is an error and never a silent random layer),
which module is the ImageNet head (replaced by our head), the backbone's stages from input to
output (what "freeze all but the last N stages" and discriminative learning rates count), and
the preprocessing its weights expect. Inference imports this to rebuild a registry model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision.models as tvm
from torch import nn

from vigil_shared.schemas.manifests import Preprocessing
from vigil_shared.vision.backbones import LITE0_PREPROCESSING
from vigil_shared.vision.efficientnet_lite import LITE0_STAGES, EfficientNetLite0

IMAGENET = Preprocessing(image_size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[[], nn.Module]
    head_path: str
    feature_dim: int
    stages: tuple[tuple[str, ...], ...]
    preprocessing: Preprocessing
    torchvision_weights: str | None = None
    """``torchvision.models`` weights enum entry, for hosts allowed to download."""


def _indexed(prefix: str, ranges: list[range]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(f"{prefix}.{i}" for i in r) for r in ranges)


def _lite0_stages() -> tuple[tuple[str, ...], ...]:
    stages: list[tuple[str, ...]] = [("_conv_stem", "_bn0")]
    start = 0
    for *_, repeats in LITE0_STAGES:
        stages.append(tuple(f"_blocks.{i}" for i in range(start, start + repeats)))
        start += repeats
    stages.append(("_conv_head", "_bn1"))
    return tuple(stages)


_RESNET_STAGES = (("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",))
_VGG_BLOCKS = [range(0, 5), range(5, 10), range(10, 17), range(17, 24), range(24, 31)]

CATALOG: dict[str, Architecture] = {
    "efficientnet_lite0": Architecture(
        name="efficientnet_lite0",
        build=EfficientNetLite0,
        head_path="_fc",
        feature_dim=1280,
        stages=_lite0_stages(),
        preprocessing=LITE0_PREPROCESSING,
    ),
    "resnet18": Architecture(
        name="resnet18",
        build=lambda: tvm.resnet18(weights=None),
        head_path="fc",
        feature_dim=512,
        stages=_RESNET_STAGES,
        preprocessing=IMAGENET,
        torchvision_weights="ResNet18_Weights.IMAGENET1K_V1",
    ),
    "resnet50": Architecture(
        name="resnet50",
        build=lambda: tvm.resnet50(weights=None),
        head_path="fc",
        feature_dim=2048,
        stages=_RESNET_STAGES,
        preprocessing=IMAGENET,
        torchvision_weights="ResNet50_Weights.IMAGENET1K_V2",
    ),
    "vgg16": Architecture(
        name="vgg16",
        build=lambda: tvm.vgg16(weights=None),
        head_path="classifier.6",
        feature_dim=4096,
        stages=(*_indexed("features", _VGG_BLOCKS), ("classifier.0", "classifier.3")),
        preprocessing=IMAGENET,
        torchvision_weights="VGG16_Weights.IMAGENET1K_V1",
    ),
    "efficientnet_b0": Architecture(
        name="efficientnet_b0",
        build=lambda: tvm.efficientnet_b0(weights=None),
        head_path="classifier",
        feature_dim=1280,
        stages=_indexed("features", [range(i, i + 1) for i in range(9)]),
        preprocessing=IMAGENET,
        torchvision_weights="EfficientNet_B0_Weights.IMAGENET1K_V1",
    ),
    "mobilenet_v3_large": Architecture(
        name="mobilenet_v3_large",
        build=lambda: tvm.mobilenet_v3_large(weights=None),
        head_path="classifier.3",
        feature_dim=1280,
        stages=(*_indexed("features", [range(i, i + 1) for i in range(17)]), ("classifier.0",)),
        preprocessing=IMAGENET,
        torchvision_weights="MobileNet_V3_Large_Weights.IMAGENET1K_V2",
    ),
}


class UnknownArchitectureError(KeyError):
    def __str__(self) -> str:
        return f"unknown architecture {self.args[0]!r}; the catalog has: {', '.join(CATALOG)}"


def architecture(name: str) -> Architecture:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownArchitectureError(name) from None


def build_head(
    *, kind: str, in_features: int, n_classes: int, hidden: int, dropout: float
) -> nn.Sequential:
    """Dropout is always a layer (p may be 0) so the head's parameter names never change."""
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, n_classes))
    if kind == "mlp":
        return nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )
    raise ValueError(f"unknown head kind {kind!r}: use linear or mlp")


class ClassifierNet(nn.Module):
    """A catalog backbone with its ImageNet head swapped for ours; ``stages`` index ``body``."""

    def __init__(self, arch: Architecture, body: nn.Module, head: nn.Sequential) -> None:
        super().__init__()
        self.arch_name = arch.name
        self.stage_paths = arch.stages
        self.body = body
        self.head = head

    def stage_modules(self) -> list[list[nn.Module]]:
        return [[self.body.get_submodule(p) for p in stage] for stage in self.stage_paths]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.body(images))
        return logits


def build_classifier(
    name: str,
    *,
    n_classes: int,
    head: str = "linear",
    hidden: int = 256,
    dropout: float = 0.0,
    pretrained: dict[str, torch.Tensor] | None = None,
) -> ClassifierNet:
    """The network for ``n_classes``; ``pretrained`` (the full ImageNet state dict, original
    head included) is loaded strictly before the head is replaced."""
    arch = architecture(name)
    body = arch.build()
    if pretrained is not None:
        body.load_state_dict(pretrained, strict=True)
    parent_path, _, attr = arch.head_path.rpartition(".")
    parent = body.get_submodule(parent_path) if parent_path else body
    setattr(parent, attr, nn.Identity())
    new_head = build_head(
        kind=head, in_features=arch.feature_dim, n_classes=n_classes, hidden=hidden, dropout=dropout
    )
    return ClassifierNet(arch, body, new_head)
