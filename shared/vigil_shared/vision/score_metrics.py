"""How well an anomaly score separates abnormal from normal frames, and where to cut it.

One implementation for training, evaluation, comparison and benchmarks, so a figure in a
manifest and a figure in ``docs/benchmarks.md`` mean the same thing. Tied scores are one
threshold: a model that saturates (many frames at exactly 1.0) neither gains nor loses from the
order the frames happened to come in.
"""

from __future__ import annotations

import torch


def auroc(scores: torch.Tensor, positives: torch.Tensor) -> float:
    """Area under the ROC curve by the rank-sum formula (ties count half); NaN when one class
    is absent."""
    n_pos = int(positives.sum())
    n_neg = positives.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores.double())
    rank_sum = float(ranks[positives.bool()].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auroc_shortfall(
    scores: torch.Tensor, positives: torch.Tensor, groups: torch.Tensor
) -> dict[int, float]:
    """Each group's share of ``1 - auroc``: for each of its positives, the fraction of all
    negatives scored above it (ties count half), over the number of positives. The shares add up
    to ``1 - auroc(scores, positives)``, so a pooled figure's shortfall can be traced to the clips
    whose anomalies rank low; groups without positives have none. Empty when one class is
    absent."""
    positives = positives.bool()
    negatives = scores[~positives].double().sort().values
    n_pos, n_neg = int(positives.sum()), negatives.numel()
    if n_pos == 0 or n_neg == 0:
        return {}
    shares: dict[int, float] = {}
    for group in sorted(set(groups[positives].tolist())):
        hits = scores[positives & (groups == group)].double()
        below = torch.searchsorted(negatives, hits, right=False)
        upto = torch.searchsorted(negatives, hits, right=True)
        above = (n_neg - upto) + (upto - below) / 2
        shares[int(group)] = float(above.sum()) / (n_neg * n_pos)
    return shares


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    order = values.argsort()
    _, inverse, counts = torch.unique_consecutive(
        values[order], return_inverse=True, return_counts=True
    )
    mean_rank = counts.cumsum(0).to(values.dtype) - (counts.to(values.dtype) - 1) / 2
    ranks = torch.empty_like(values)
    ranks[order] = mean_rank[inverse]
    return ranks


def _by_threshold(
    scores: torch.Tensor, positives: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct scores from the highest down, with the positives and frames flagged at each."""
    values, inverse = torch.unique(scores.double(), sorted=True, return_inverse=True)
    hits = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, positives.double())
    counts = torch.bincount(inverse, minlength=len(values)).double()
    return values.flip(0), hits.flip(0).cumsum(0), counts.flip(0).cumsum(0)


def average_precision(scores: torch.Tensor, positives: torch.Tensor) -> float:
    """Area under the precision-recall curve as average precision, one step per distinct score;
    NaN without positives."""
    n_pos = float(positives.sum())
    if n_pos == 0:
        return float("nan")
    _, true_pos, flagged = _by_threshold(scores, positives)
    recall_step = torch.diff(true_pos, prepend=true_pos.new_zeros(1)) / n_pos
    return float((recall_step * true_pos / flagged).sum())


def best_f1_threshold(scores: torch.Tensor, positives: torch.Tensor) -> tuple[float, float]:
    """The threshold (flag scores above it) with the highest F1, and that F1; the cut lies
    halfway to the next lower distinct score so it does not sit on a frame's exact value (just
    under the lowest score when flagging every frame is best)."""
    values, true_pos, flagged = _by_threshold(scores, positives)
    f1 = 2 * true_pos / (flagged + float(positives.sum()))
    best = int(f1.argmax())
    if best + 1 < values.numel():
        return float((values[best] + values[best + 1]) / 2), float(f1[best])
    lowest = float(values[best])
    return lowest - 1e-6 * max(1.0, abs(lowest)), float(f1[best])


def normal_threshold(scores: torch.Tensor, *, target_fpr: float) -> float:
    """The score that ``target_fpr`` of held-out normal frames exceed."""
    return float(torch.quantile(scores.double(), 1.0 - target_fpr))


def trailing_mean(scores: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of each score and up to ``window - 1`` before it: what a live camera can compute."""
    if window <= 1 or scores.numel() == 0:
        return scores
    cumulative = torch.cat([scores.new_zeros(1), scores.double().cumsum(0)])
    index = torch.arange(scores.numel())
    start = (index - window + 1).clamp(min=0)
    return ((cumulative[index + 1] - cumulative[start]) / (index + 1 - start)).to(scores.dtype)


def accumulated_evidence(scores: torch.Tensor, window: int, drift: float) -> torch.Tensor:
    """Each score plus the most that a run of the frames just before it (at most ``window - 1``
    of them) had beyond ``drift``, or nothing when every such run sums below zero: a windowed
    CUSUM over a camera's frames, in order. A frame alone scores itself; frames that are each
    somewhat unusual add up; a camera's first frames have fewer frames behind them."""
    if window <= 1 or scores.numel() == 0:
        return scores
    excess = scores.double() - drift
    before = torch.cat([excess.new_zeros(1), excess.cumsum(0)])[:-1]  # sum of excess[:t]
    index = torch.arange(scores.numel())
    best = torch.zeros_like(excess)
    for back in range(1, window):
        start = index - back
        run = before - before[start.clamp(min=0)]  # excess[start:t]
        best = torch.where(start >= 0, torch.maximum(best, run), best)
    return (scores.double() + best).to(scores.dtype)
