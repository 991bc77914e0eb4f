"""Ensembles of registry models of any kind, served as one ``FrameModel``.

- **Score averaging** (``ScoreEnsemble``, any members): each member's anomaly score is normalised
  with the mean and spread of its scores on held-out normal frames (``ScoreNorm``), then the
  normalised scores are averaged: a kNN distance and a probability live on different scales, and
  without this the larger scale would decide alone. The mean goes through softplus, because an
  event's score is never negative (the event contract); softplus keeps the order, so AUROC and
  thresholds mean the same, and is close to the mean itself above about 2.
- **Probability averaging** (``ClassProbabilityEnsemble``, classify members with one class list):
  the members' class probabilities are averaged; the score is 1 - P(normal classes) of the mean
  and the label its most probable class.

The trainer fits the normalisations and the threshold (``vigil_trainer.classify.registry_fusion``);
inference only applies them: ``ensemble_from_artifact`` is the ``ensemble`` kind's loader
(``vision.model_kinds``), given the members ``vision.inferencer`` loads from the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch.nn import functional

from vigil_shared.schemas.manifests import EnsembleMember, ModelManifest
from vigil_shared.vision.classifier_model import ArtifactMismatchError, ClassifierFrameModel
from vigil_shared.vision.scoring import FrameModel, FrameScore

CENTER_TENSOR = "score_center"
SCALE_TENSOR = "score_scale"


class EnsembleMemberError(ValueError):
    """A model that cannot be an ensemble's member (an ensemble itself, or not a classifier
    where probabilities are averaged), or an ensemble loaded without its members."""


@dataclass(frozen=True)
class ScoreNorm:
    """A member's score is mapped to ``(score - center) / scale``."""

    center: float
    scale: float

    def apply(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores.double() - self.center) / self.scale


IDENTITY = ScoreNorm(center=0.0, scale=1.0)


def fit_score_norm(normal_scores: torch.Tensor) -> ScoreNorm:
    """Mean and standard deviation of a member's scores on validation normal frames (the floor
    keeps a member that scores every normal frame alike finite)."""
    if normal_scores.numel() < 2:
        raise ValueError("score normalisation needs at least 2 validation normal frames")
    scores = normal_scores.double()
    return ScoreNorm(center=float(scores.mean()), scale=max(float(scores.std()), 1e-6))


def fuse_normalised(normalised: Sequence[torch.Tensor]) -> torch.Tensor:
    """The ensemble score of members' normalised scores (or heatmaps) of the same frames."""
    return functional.softplus(torch.stack([n.double() for n in normalised]).mean(0))


def norm_tensors(norms: Sequence[ScoreNorm]) -> dict[str, torch.Tensor]:
    """The ensemble's artifact: its members' normalisations, in member order."""
    return {
        CENTER_TENSOR: torch.tensor([n.center for n in norms], dtype=torch.float64),
        SCALE_TENSOR: torch.tensor([n.scale for n in norms], dtype=torch.float64),
    }


def norms_from(tensors: dict[str, torch.Tensor]) -> list[ScoreNorm]:
    centers, scales = tensors[CENTER_TENSOR].tolist(), tensors[SCALE_TENSOR].tolist()
    return [ScoreNorm(center=c, scale=s) for c, s in zip(centers, scales, strict=True)]


def _same_size(heatmaps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The heatmaps resized to the first one's size."""
    size = heatmaps[0].shape[-2:]
    return [
        functional.interpolate(h[None, None].float(), size=size, mode="bilinear")[0, 0]
        if h.shape[-2:] != size
        else h.float()
        for h in heatmaps
    ]


class ScoreEnsemble:
    """``FrameModel`` over members: score = softplus(mean of normalised member scores)."""

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
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        per_member = [m.score_frames(camera_ids, images, times) for m in self.members]
        raw = [
            torch.tensor([s.score for s in scores], dtype=torch.float64) for scores in per_member
        ]
        fused = fuse_normalised([n.apply(r) for n, r in zip(self.norms, raw, strict=True)])
        out = []
        for i in range(len(images)):
            maps = [member[i].heatmap for member in per_member]
            heatmap = None
            if all(m is not None for m in maps):
                resized = _same_size([m for m in maps if m is not None])
                normalised = [n.apply(m) for n, m in zip(self.norms, resized, strict=True)]
                heatmap = fuse_normalised(normalised).float()
            out.append(FrameScore(score=float(fused[i]), threshold=self.threshold, heatmap=heatmap))
        return out

    @property
    def context_frames(self) -> int:
        """The members score the same frames: the one that looks furthest back."""
        return max(member.context_frames for member in self.members)

    def forget(self, camera_id: str) -> None:
        for member in self.members:
            member.forget(camera_id)


class ClassProbabilities(Protocol):
    """A classifier that also gives its class probabilities (``ClassifierFrameModel``)."""

    manifest: ModelManifest

    def probabilities(self, images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C) probabilities over ``manifest.classes`` and (N, h, w) maps (or an empty
        tensor when the network has none)."""
        ...


class ClassProbabilityEnsemble:
    """``FrameModel`` over classify members with the manifest's classes: mean probabilities."""

    def __init__(
        self, *, manifest: ModelManifest, members: Sequence[ClassProbabilities], threshold: float
    ) -> None:
        if len(members) < 2:
            raise ValueError(f"{len(members)} members: probability averaging needs 2+")
        for member in members:
            if (member.manifest.classes, member.manifest.normal_classes) != (
                manifest.classes,
                manifest.normal_classes,
            ):
                raise ValueError(
                    f"member {member.manifest.model_id} has classes {member.manifest.classes} "
                    f"(normal {member.manifest.normal_classes}), the ensemble "
                    f"{manifest.classes} (normal {manifest.normal_classes})"
                )
        self.manifest = manifest
        self.members = list(members)
        self.threshold = threshold
        self.normal = torch.tensor([c in manifest.normal_classes for c in manifest.classes])

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        if not images:
            return []
        outputs = [member.probabilities(images) for member in self.members]
        probs = torch.stack([p.double().cpu() for p, _ in outputs]).mean(0)
        scores = (1.0 - probs[:, self.normal].sum(dim=1)).clamp(0.0, 1.0)
        labels = probs.argmax(dim=1).tolist()
        heats = [h.float().cpu() for _, h in outputs if h.ndim == 3]
        out = []
        for i, score in enumerate(scores.tolist()):
            heatmap = None
            if len(heats) == len(outputs):
                # Each member's map scaled to peak 1, so no member's feature norms dominate.
                maps = _same_size([h[i] / h[i].max().clamp(min=1e-12) for h in heats])
                heatmap = torch.stack(maps).mean(0) * score
            out.append(
                FrameScore(
                    score=score,
                    threshold=self.threshold,
                    heatmap=heatmap,
                    label=self.manifest.classes[labels[i]],
                )
            )
        return out

    @property
    def context_frames(self) -> int:
        return 0

    def forget(self, camera_id: str) -> None:
        """Classify members score frames independently."""


def ensemble_from_artifact(
    *,
    manifest: ModelManifest,
    tensors: dict[str, torch.Tensor],
    device: str,
    members: Callable[[EnsembleMember], FrameModel],
) -> ScoreEnsemble | ClassProbabilityEnsemble:
    """The ensemble over its pinned members (each loaded by ``members``, on ``device``), with
    the normalisations its artifact holds; refused when the manifest's members were edited."""
    assert manifest.ensemble is not None  # the manifest validator requires it for an ensemble
    norms = norms_from(tensors)
    pinned = manifest.ensemble.members
    if [(n.center, n.scale) for n in norms] != [(m.score_center, m.score_scale) for m in pinned]:
        raise ArtifactMismatchError(
            f"ensemble {manifest.model_id}: the artifact's normalisations differ from the "
            "manifest's members; the manifest was edited: restore it or refit the ensemble"
        )
    models = [members(m) for m in pinned]
    if manifest.ensemble.method == "score":
        return ScoreEnsemble(
            manifest=manifest, members=models, norms=norms, threshold=manifest.threshold
        )
    classifiers = [m for m in models if isinstance(m, ClassifierFrameModel)]
    if len(classifiers) != len(models):
        raise EnsembleMemberError(
            f"ensemble {manifest.model_id} averages probabilities of classify models only"
        )
    return ClassProbabilityEnsemble(
        manifest=manifest, members=classifiers, threshold=manifest.threshold
    )
