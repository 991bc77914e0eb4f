"""The classify inferencer: a fine-tuned catalog network scoring frames for the fleet.

The anomaly score is 1 - P(normal classes) (the manifest names them), so 0 is surely normal and
1 surely not; the label is the most probable class. The heatmap is the channel norm of the last
spatial feature map, scaled so its peak equals the frame's score: a cheap "where the network
looked" without gradients. An ensemble artifact (``ensemble_size`` > 1) averages probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.vision.catalog import ClassifierNet, build_classifier
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.scoring import FrameScore


class ArtifactMismatchError(ValueError):
    """The artifact's tensors do not fit the network its manifest describes."""


def member_state(tensors: dict[str, torch.Tensor], index: int, size: int) -> dict[str, Any]:
    if size == 1:
        return dict(tensors)
    prefix = f"member{index}."
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


class _LastMap:
    """Keeps the last 4-D output among the hooked modules of one forward pass."""

    def __init__(self, net: ClassifierNet) -> None:
        self.value: torch.Tensor | None = None
        for stage in net.stage_paths:
            net.body.get_submodule(stage[-1]).register_forward_hook(self._keep)

    def _keep(self, _: nn.Module, __: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.ndim == 4:
            self.value = output


class ClassifierFrameModel:
    def __init__(self, manifest: ModelManifest, nets: Sequence[ClassifierNet], device: str):
        if not manifest.classes or not manifest.normal_classes:
            raise ArtifactMismatchError(f"model {manifest.model_id} names no classes")
        self.manifest = manifest
        self.device = device
        self.cuda = device.startswith("cuda")
        memory = torch.channels_last if self.cuda else torch.contiguous_format
        self.nets = [net.to(device).to(memory_format=memory).eval() for net in nets]
        self.maps = [_LastMap(net) for net in self.nets]
        normal = [c in manifest.normal_classes for c in manifest.classes]
        self.normal = torch.tensor(normal, dtype=torch.bool, device=device)

    @classmethod
    def from_artifact(
        cls, manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str
    ) -> ClassifierFrameModel:
        nets = []
        for index in range(manifest.ensemble_size):
            net = build_classifier(
                manifest.architecture,
                n_classes=len(manifest.classes),
                head=manifest.head or "linear",
                hidden=manifest.head_hidden or 256,
            )
            try:
                net.load_state_dict(member_state(tensors, index, manifest.ensemble_size))
            except RuntimeError as exc:
                raise ArtifactMismatchError(
                    f"model {manifest.model_id}: artifact does not fit {manifest.architecture}: "
                    + str(exc).splitlines()[0]
                ) from exc
            nets.append(net)
        return cls(manifest, nets, device)

    @torch.inference_mode()
    def probabilities(self, images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean class probabilities (N, C) and the mean last feature-map norm (N, h, w)."""
        batch = to_batch([i.to(self.device) for i in images], self.manifest.own_preprocessing())
        if self.cuda:
            batch = batch.contiguous(memory_format=torch.channels_last)
        probs = torch.zeros((len(images), len(self.manifest.classes)), device=self.device)
        heat: torch.Tensor | None = None
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda):
            for net, last in zip(self.nets, self.maps, strict=True):
                probs += torch.softmax(net(batch).float(), dim=1)
                if last.value is not None:
                    norm = last.value.float().norm(dim=1)
                    heat = norm if heat is None else heat + norm
        return probs / len(self.nets), (heat if heat is not None else torch.zeros(0))

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        if not images:
            return []
        probs, heat = self.probabilities(images)
        scores = (1.0 - probs[:, self.normal].sum(dim=1)).clamp(0.0, 1.0).cpu()
        labels = probs.argmax(dim=1).cpu().tolist()
        out = []
        for i, score in enumerate(scores.tolist()):
            heatmap = None
            if heat.ndim == 3:
                peak = heat[i].max().clamp(min=1e-12)
                heatmap = (heat[i] / peak * score).cpu()
            out.append(
                FrameScore(
                    score=score,
                    threshold=self.manifest.threshold,
                    heatmap=heatmap,
                    label=self.manifest.classes[labels[i]],
                )
            )
        return out

    @property
    def context_frames(self) -> int:
        return 0

    def forget(self, camera_id: str) -> None:
        """Frames are scored independently: there is no per-camera state to drop."""
