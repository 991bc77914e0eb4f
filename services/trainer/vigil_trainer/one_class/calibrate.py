"""Normalisation, threshold and metrics of a one_class model, from clips the banks never saw.

Each stream's frame scores on the held-out normal clips give its (mean, std), so both streams
are in "standard deviations above normal" before ``weighted`` fusion, and its tail
(``tail_scores``), so every stream's score is a surprise before ``calibrated_max`` fusion. The
threshold is the fused (and, with a smoothing window, trailing-averaged) score that
``target_fpr`` of held-out normal frames exceed; when the dataset has clips with labeled
anomalies, it is instead the score that maximises F1 on those clips and the held-out normals
together, and AUROC/AUPR are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.vision.one_class_model import (
    ACTIVITY_TAIL,
    APPEARANCE_TAIL,
    MOTION_TAIL,
    SCENE_TAIL,
    StreamScores,
    calibrated_tails,
)
from vigil_shared.vision.tail_scores import fit_tail


@dataclass
class ClipScores:
    """A clip's raw stream scores in frame order, and its per-frame anomaly labels."""

    raw: list[StreamScores]
    abnormal: torch.Tensor  # bool (N,)


def stream_norm(values: torch.Tensor) -> torch.Tensor:
    """(mean, std) of a stream's held-out normal frame scores, NaN (no flow yet) left out."""
    present = values[~torch.isnan(values)]
    if present.numel() < 2:
        return torch.tensor([0.0, 1.0])
    std = float(present.std())
    return torch.tensor([float(present.mean()), max(std, 1e-6)])


def stream_tails(spec: OneClassSpec, holdout: list[StreamScores]) -> dict[str, torch.Tensor]:
    """Each fused stream's tail on the held-out normal frames (``calibrated_max`` fusion);
    activity is two-sided: a scene that empties or stops is as unusual as one that fills."""
    values = {
        APPEARANCE_TAIL: torch.cat([r.appearance for r in holdout]),
        MOTION_TAIL: torch.cat([r.motion for r in holdout]),
        SCENE_TAIL: torch.cat([r.scene for r in holdout]),
        ACTIVITY_TAIL: torch.cat([r.activity for r in holdout]),
    }
    return {
        name: fit_tail(values[name], two_sided=name == ACTIVITY_TAIL)
        for name in calibrated_tails(spec)
    }


def quantile_metrics(scores: torch.Tensor, threshold: float) -> dict[str, float]:
    quantiles = torch.quantile(scores.double(), torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64))
    return {
        "holdout_score_p50": float(quantiles[0]),
        "holdout_score_p90": float(quantiles[1]),
        "holdout_score_p99": float(quantiles[2]),
        "holdout_fpr": float((scores > threshold).double().mean()),
        "n_holdout": float(scores.numel()),
    }
