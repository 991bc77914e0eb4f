"""Normalisation, threshold and metrics of a one_class model, from clips the banks never saw.

Each stream's frame scores on the held-out normal clips give its (mean, std), so both streams
are in "standard deviations above normal" before they are fused. The threshold is the fused
(and, with a smoothing window, trailing-averaged) score that ``target_fpr`` of held-out normal
frames exceed; when the dataset has clips with labeled anomalies, it is instead the score that
maximises F1 on those clips and the held-out normals together, and AUROC/AUPR are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vigil_shared.vision.one_class_model import StreamScores


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


def trailing_mean(scores: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of each score and up to ``window - 1`` before it: what a live camera can compute."""
    if window <= 1 or scores.numel() == 0:
        return scores
    cumulative = torch.cat([scores.new_zeros(1), scores.double().cumsum(0)])
    index = torch.arange(scores.numel())
    start = (index - window + 1).clamp(min=0)
    return ((cumulative[index + 1] - cumulative[start]) / (index + 1 - start)).to(scores.dtype)


def auroc(scores: torch.Tensor, abnormal: torch.Tensor) -> float:
    """Area under the ROC curve (ties count half), by the rank-sum formula."""
    positives = int(abnormal.sum())
    negatives = abnormal.numel() - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _average_ranks(scores.double())
    rank_sum = float(ranks[abnormal].sum())
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    order = values.argsort()
    sorted_values = values[order]
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(1, values.numel() + 1, dtype=values.dtype)
    _, inverse, counts = torch.unique_consecutive(
        sorted_values, return_inverse=True, return_counts=True
    )
    ends = counts.cumsum(0).to(values.dtype)
    mean_rank = ends - (counts.to(values.dtype) - 1) / 2
    ranks[order] = mean_rank[inverse]
    return ranks


def average_precision(scores: torch.Tensor, abnormal: torch.Tensor) -> float:
    """Area under the precision-recall curve (average precision), anomalies positive."""
    positives = int(abnormal.sum())
    if positives == 0:
        return float("nan")
    order = scores.argsort(descending=True)
    hits = abnormal[order].double()
    precision = hits.cumsum(0) / torch.arange(1, hits.numel() + 1, dtype=torch.float64)
    return float((precision * hits).sum() / positives)


def best_f1_threshold(scores: torch.Tensor, abnormal: torch.Tensor) -> tuple[float, float]:
    """The threshold (flag scores above it) with the highest F1, and that F1."""
    order = scores.argsort(descending=True)
    ranked, hits = scores[order], abnormal[order].double()
    true_pos = hits.cumsum(0)
    flagged = torch.arange(1, hits.numel() + 1, dtype=torch.float64)
    f1 = 2 * true_pos / (flagged + abnormal.sum())
    best = int(f1.argmax())
    below = ranked[best + 1] if best + 1 < ranked.numel() else ranked[best] - 1.0
    return float((ranked[best] + below) / 2), float(f1[best])


def normal_threshold(scores: torch.Tensor, *, target_fpr: float) -> float:
    """The score that ``target_fpr`` of held-out normal frames exceed."""
    return float(torch.quantile(scores.double(), 1.0 - target_fpr))


def quantile_metrics(scores: torch.Tensor, threshold: float) -> dict[str, float]:
    quantiles = torch.quantile(scores.double(), torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64))
    return {
        "holdout_score_p50": float(quantiles[0]),
        "holdout_score_p90": float(quantiles[1]),
        "holdout_score_p99": float(quantiles[2]),
        "holdout_fpr": float((scores > threshold).double().mean()),
        "n_holdout": float(scores.numel()),
    }
