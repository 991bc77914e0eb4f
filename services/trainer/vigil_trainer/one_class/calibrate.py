"""Normalisation, threshold and metrics of a one_class model, from clips the banks never saw.

Each stream's frame scores on the held-out normal clips give its (mean, std), so both streams
are in "standard deviations above normal" before ``weighted`` fusion, and its tail
(``tail_scores``), so every stream's score is a surprise before a calibrated fusion. The
threshold is the fused (and, with a smoothing window, trailing-averaged) score that
``target_fpr`` of held-out normal frames exceed; when the dataset has clips with labeled
anomalies, it is instead the score that maximises F1 on those clips and the held-out normals
together, and AUROC/AUPR are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from vigil_shared.schemas.one_class import MotionSpec, OneClassSpec
from vigil_shared.vision.one_class_model import (
    ACTIVITY_TAIL,
    APPEARANCE_TAIL,
    MOTION_TAIL,
    SCENE_TAIL,
    StreamScores,
    calibrated_tails,
    per_cell_motion,
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
    """Each fused stream's tail on the held-out normal frames (calibrated fusions);
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


CELL_QUANTILE = 0.9
CELL_FLOOR = 0.25
"""A cell's normal level is at least this share of the median cell's: a cell where nothing
moves on normal footage (a wall, the sky) would otherwise turn its flow noise into anomalies."""


def motion_cell_scale(holdout: list[ClipScores], *, per_row: bool = False) -> torch.Tensor:
    """Per cell, the ``CELL_QUANTILE`` of its persistent motion on the normal frames (those
    with motion), floored at ``CELL_FLOOR`` of the median cell's (``MotionSpec.per_cell``);
    ``per_row``: every cell of a row gets the row's level, the quantile of its busiest cell
    in each frame (``MotionSpec.per_row``: a row's walkers set it, wherever they walk)."""
    maps = torch.cat(
        [c.motion_map[~torch.isnan(c.motion)] for clip in holdout for c in clip.raw]  # type: ignore[index]
    )
    if maps.shape[0] == 0:
        raise ValueError("no normal frames with motion to fit the motion levels on")
    values = maps.amax(dim=2) if per_row else maps.flatten(1)
    level = torch.quantile(values.double(), CELL_QUANTILE, dim=0).float()
    floor = max(float(level.median()) * CELL_FLOOR, 1e-6)
    level = level.clamp_min(floor)
    return (
        level[:, None].expand(maps.shape[1:]).contiguous()
        if per_row
        else level.reshape(maps.shape[1:])
    )


def with_cell_scale(
    clips: list[ClipScores], scale: torch.Tensor, spec: MotionSpec
) -> list[ClipScores]:
    """The clips' motion as a scorer with ``scale`` computes it (the raw maps rescaled)."""
    out = []
    for clip in clips:
        raw = []
        for chunk in clip.raw:
            assert chunk.motion_map is not None
            motion, maps = per_cell_motion(chunk.motion, chunk.motion_map, scale, spec)
            raw.append(replace(chunk, motion=motion, motion_map=maps))
        out.append(ClipScores(raw=raw, abnormal=clip.abnormal))
    return out
