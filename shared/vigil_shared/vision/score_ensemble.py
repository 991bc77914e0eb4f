"""An ensemble of registry models of any kind, served as one ``FrameModel``.

Each member's anomaly score is normalised with the mean and spread of its scores on validation
normal frames (``ScoreNorm``), then the normalised scores are averaged: a kNN distance and a
probability live on different scales, and without this the larger scale would decide alone.
The trainer fits the normalisations and the threshold (``vigil_trainer.fusion``); inference
only applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional

from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.vision.scoring import FrameModel, FrameScore


@dataclass(frozen=True)
class ScoreNorm:
    """A member's score is mapped to ``(score - center) / scale``."""

    center: float
    scale: float

    def apply(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores.double() - self.center) / self.scale


def fit_score_norm(normal_scores: torch.Tensor) -> ScoreNorm:
    """Mean and standard deviation of a member's scores on validation normal frames (the floor
    keeps a member that scores every normal frame alike finite)."""
    if normal_scores.numel() < 2:
        raise ValueError("score normalisation needs at least 2 validation normal frames")
    scores = normal_scores.double()
    return ScoreNorm(center=float(scores.mean()), scale=max(float(scores.std()), 1e-6))


def _mean_heatmap(heatmaps: list[torch.Tensor]) -> torch.Tensor:
    size = heatmaps[0].shape[-2:]
    resized = [
        functional.interpolate(h[None, None].float(), size=size, mode="bilinear")[0, 0]
        if h.shape[-2:] != size
        else h.float()
        for h in heatmaps
    ]
    return torch.stack(resized).mean(0)


class ScoreEnsemble:
    """``FrameModel`` over members: score = mean of normalised member scores."""

    def __init__(
        self,
        *,
        manifest: ModelManifest,
        members: Sequence[FrameModel],
        norms: Sequence[ScoreNorm],
        threshold: float,
    ) -> None:
        if len(members) < 2 or len(members) != len(norms):
            raise ValueError(f"{len(members)} members and {len(norms)} norms: need 2+ of each")
        self.manifest = manifest
        self.members = list(members)
        self.norms = list(norms)
        self.threshold = threshold

    def score_frames(
        self, camera_ids: Sequence[str], images: Sequence[torch.Tensor]
    ) -> list[FrameScore]:
        per_member = [m.score_frames(camera_ids, images) for m in self.members]
        out = []
        for i in range(len(images)):
            scores = [member[i] for member in per_member]
            normalised = [
                float(n.apply(torch.tensor(s.score)))
                for s, n in zip(scores, self.norms, strict=True)
            ]
            heatmaps = [
                n.apply(s.heatmap).float()
                for s, n in zip(scores, self.norms, strict=True)
                if s.heatmap is not None
            ]
            heatmap = _mean_heatmap(heatmaps) if len(heatmaps) == len(scores) else None
            score = sum(normalised) / len(normalised)
            out.append(FrameScore(score=score, threshold=self.threshold, heatmap=heatmap))
        return out

    def forget(self, camera_id: str) -> None:
        for member in self.members:
            member.forget(camera_id)
