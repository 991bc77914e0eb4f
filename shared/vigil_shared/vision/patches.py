"""Patch features from intermediate backbone stages: the appearance half of a one_class model.

Mid-level stages (strides 8 and 16 of EfficientNet-Lite0) describe local texture and shape
without the ImageNet-specific semantics of the last stages, which is what tells an unusual
object apart from the scene it usually contains. Each location is averaged with its 3x3
neighbourhood (a little context, robust to a pixel of jitter), the coarser stage is upsampled to
the finer grid, and the two are concatenated, as PatchCore does.

An optional site projection (``mean``, ``components``: a whitening PCA fitted on the site's
normal patches) maps features into a space where Euclidean distance weighs every direction of
normal variation equally; it is the cheap, closed-form way the model adapts to its site.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from vigil_shared.vision.efficientnet_lite import EfficientNetLite0

# Output channels of each Lite0 stage (index = stage), for sizing banks without a forward pass.
LITE0_STAGE_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
CPU_CHUNK = 4
"""Frames per backbone pass on a CPU: a batch of 16 at 224 px is slower per frame than 4 (its
activations leave the cache; bench/results/one-class-cpu-profile.json)."""


class PatchFeatureExtractor(nn.Module):
    """(N, 3, S, S) normalised images to (N, D, h, w) patch features at the first stage's grid."""

    def __init__(self, backbone: EfficientNetLite0, stages: tuple[int, ...]) -> None:
        super().__init__()
        if not stages or any(s < 0 or s >= len(LITE0_STAGE_CHANNELS) for s in stages):
            raise ValueError(f"stages must be indices 0..6 of Lite0 stages, got {stages}")
        self.backbone = backbone
        self.stages = tuple(sorted(stages))
        self.last = max(self.stages)
        self.register_buffer("proj_mean", torch.empty(0), persistent=False)
        self.register_buffer("proj_components", torch.empty(0), persistent=False)

    @property
    def raw_dim(self) -> int:
        return sum(LITE0_STAGE_CHANNELS[s] for s in self.stages)

    def set_projection(self, mean: torch.Tensor, components: torch.Tensor) -> None:
        """Project features as ``(x - mean) @ components`` ((D,), (D, P)) from now on."""
        device = next(self.backbone.parameters()).device
        self.proj_mean = mean.to(device, torch.float32)
        self.proj_components = components.to(device, torch.float32)

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """Aggregated, concatenated stage features before any site projection, computed
        channels-last (the layout oneDNN's depthwise convolutions are fastest in: 1.3-1.9x on
        the project's CPU) and on a CPU ``CPU_CHUNK`` frames at a time."""
        if images.device.type == "cpu" and images.shape[0] > CPU_CHUNK:
            return torch.cat([self.raw(chunk) for chunk in torch.split(images, CPU_CHUNK)])
        images = images.contiguous(memory_format=torch.channels_last)
        out = self.backbone.act(self.backbone._bn0(self.backbone._conv_stem(images)))
        wanted = {self.backbone.stage_ends[s]: s for s in self.stages}
        maps: list[torch.Tensor] = []
        for index, block in enumerate(self.backbone._blocks):
            out = block(out)
            if index in wanted:
                maps.append(
                    functional.avg_pool2d(out, 3, stride=1, padding=1, count_include_pad=False)
                )
                if wanted[index] == self.last:
                    break
        size = maps[0].shape[-2:]
        resized = [
            m if m.shape[-2:] == size else functional.interpolate(m, size=size) for m in maps
        ]
        return torch.cat(resized, dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.raw(images)
        if self.proj_components.numel() == 0:
            return features
        n, d, h, w = features.shape
        flat = features.permute(0, 2, 3, 1).reshape(-1, d)
        projected = (flat - self.proj_mean) @ self.proj_components
        return projected.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def fit_whitening(
    patches: torch.Tensor, *, dim: int, eps: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (D, dim) whitening PCA components from (M, D) normal patch features."""
    mean = patches.mean(dim=0)
    centred = patches - mean
    covariance = centred.T @ centred / max(1, centred.shape[0] - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance.double())
    order = eigenvalues.argsort(descending=True)[: min(dim, patches.shape[1])]
    scale = (eigenvalues[order].clamp_min(0) + eps * eigenvalues.max()).rsqrt()
    return mean, (eigenvectors[:, order] * scale).float()
