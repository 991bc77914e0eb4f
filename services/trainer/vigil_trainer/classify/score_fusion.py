"""Score fusion: several registry models' anomaly scores of the same held-out frames made into
one ensemble score, its threshold, and its figures (the ``registry_models`` job,
``classify.registry_fusion``).

Each member's score is normalised with the mean and spread of its scores on the held-out normal
frames, so a member whose scores run on a larger scale cannot outvote the others, then the
normalised scores are averaged; inference serves it as
``vigil_shared.vision.score_ensemble.ScoreEnsemble``. Classifiers with one class list may instead
average their probabilities (``method: probability``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from vigil_shared.vision.score_ensemble import (
    IDENTITY,
    ScoreNorm,
    fit_score_norm,
    fuse_normalised,
)
from vigil_shared.vision.score_metrics import (
    auroc,
    average_precision,
    best_f1_threshold,
    normal_threshold,
)
from vigil_trainer.classify.fusion import FusionError

FusionMethod = Literal["probability", "score"]
TARGET_FPR = 0.01
"""An ensemble fitted without abnormal frames flags 1 in 100 held-out normal frames."""


def average_scores(scores: Sequence[torch.Tensor], norms: Sequence[ScoreNorm]) -> torch.Tensor:
    """The score ensemble's score of each frame (``ScoreEnsemble`` computes the same)."""
    if len(scores) != len(norms) or not scores:
        raise FusionError(f"{len(scores)} score vectors for {len(norms)} normalisations")
    return fuse_normalised([n.apply(s) for s, n in zip(scores, norms, strict=True)])


@dataclass(frozen=True)
class ScoreFusion:
    """What an ensemble of registry models needs, fitted on held-out frames."""

    norms: tuple[ScoreNorm, ...]
    val_scores: torch.Tensor
    """The ensemble's score of each held-out frame."""


def fit_score_fusion(
    *, scores: Sequence[torch.Tensor], normal: torch.Tensor, method: FusionMethod = "score"
) -> ScoreFusion:
    """Members' scores of the same held-out frames, fused. ``score``: each member normalised
    on the frames labeled normal. ``probability``: members are classifiers with one class list,
    whose score is 1 - P(normal), so the mean score is 1 - P(normal) of the mean probabilities."""
    n_normal = int(normal.sum())
    if n_normal < 2:
        raise FusionError(
            f"the held-out frames include {n_normal} labeled normal; fusion needs at least 2 "
            "(hold out groups with normal frames: validation.groups)"
        )
    if method == "probability":
        norms = tuple(IDENTITY for _ in scores)
        return ScoreFusion(
            norms=norms, val_scores=torch.stack([s.double() for s in scores]).mean(0)
        )
    try:
        norms = tuple(fit_score_norm(member[normal]) for member in scores)
    except ValueError as exc:
        raise FusionError(str(exc)) from exc
    return ScoreFusion(norms=norms, val_scores=average_scores(scores, norms))


def calibrate_threshold(
    scores: torch.Tensor, positives: torch.Tensor, *, target_fpr: float = TARGET_FPR
) -> tuple[float, str]:
    """The best-F1 cut on labeled held-out frames, or, with no abnormal frame among them, the
    score ``target_fpr`` of the normal frames exceed; and which one it is. Never below 0: an
    ensemble's scores are not negative, and an event's threshold may not be."""
    if int(positives.sum()) == 0:
        threshold = normal_threshold(scores, target_fpr=target_fpr)
        return max(threshold, 0.0), "normal_fpr"
    threshold, _ = best_f1_threshold(scores, positives)
    return max(threshold, 0.0), "validation_f1"


def scores_at(scores: torch.Tensor, positives: torch.Tensor, threshold: float) -> dict[str, float]:
    """AUROC, AUPR, and precision, recall, F1 and false-positive rate of frames above the
    threshold (undefined ones NaN)."""
    flagged = scores > threshold
    hits = float((flagged & positives).sum())
    n_pos, n_neg = float(positives.sum()), float((~positives).sum())
    precision = hits / float(flagged.sum()) if flagged.any() else float("nan")
    recall = hits / n_pos if n_pos else float("nan")
    return {
        "auroc": auroc(scores, positives),
        "aupr": average_precision(scores, positives),
        "precision": precision,
        "recall": recall,
        "f1": 2 * hits / (float(flagged.sum()) + n_pos) if n_pos else float("nan"),
        "false_positive_rate": float((flagged & ~positives).sum()) / n_neg if n_neg else 0.0,
    }
