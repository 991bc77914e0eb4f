"""How a one_class model's streams become one frame score and one heatmap.

Each stream gives a raw frame score (NaN where it has none yet: a camera's first frame has no
motion) and, for the streams that localise, a map. Two fusions (``OneClassSpec.fusion``):

- ``weighted``: the weighted mean of z-scores (normalised by the held-out normal frames' mean
  and std), weights renormalised over the streams a frame has, through softplus. A stream's
  influence is its weight whatever it sees: a strong signal of a low-weight stream is drowned.
- ``calibrated_max``: each score as its surprise under the site's normal frames
  (``tail_scores.surprise``, about ``-ln`` of the normal exceedance probability), and the
  largest wins. Comparable by construction, so any stream alarms on its own and no weight is
  chosen. Already >= 0, no softplus. A model fitted on enough labeled anomalies may carry a
  non-negative gain per stream (``max_s(g_s * surprise_s)``, the trainer's ``label_fusion``);
  without one every gain is 1.

The heatmap is on the coarsest stream grid; a whole-frame stream (no map) fills it evenly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional

from vigil_shared.vision.tail_scores import surprise


@dataclass(frozen=True)
class Stream:
    """One stream of a batch, with what its fusion needs from the artifact."""

    score: torch.Tensor  # (N,), NaN where the stream has no score for a frame
    map: torch.Tensor | None  # (N, h, w), None for a whole-frame stream
    weight: float = 1.0  # weighted fusion
    norm: torch.Tensor | None = None  # (mean, std), weighted fusion
    tail: torch.Tensor | None = None  # (sides, 4), calibrated_max fusion
    gain: float = 1.0  # calibrated_max fusion: the surprise's multiplier (fitted on labels)


def _grid(streams: list[Stream]) -> tuple[int, int]:
    shapes = [s.map.shape[-2:] for s in streams if s.map is not None]
    if not shapes:
        return (1, 1)
    smallest = min(shapes, key=lambda shape: shape.numel())
    return int(smallest[0]), int(smallest[1])


def _pooled(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    return functional.adaptive_avg_pool2d(maps.unsqueeze(1), grid).squeeze(1)


def weighted(streams: list[Stream]) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean of z-scores and of z-maps, both through softplus (see the module)."""
    grid = _grid(streams)
    n = streams[0].score.shape[0]
    total, weights, heatmap = torch.zeros(n), torch.zeros(n), torch.zeros((n, *grid))
    for stream in streams:
        assert stream.norm is not None
        mean, std = (float(v) for v in stream.norm)
        present = ~torch.isnan(stream.score)
        total[present] += stream.weight * (stream.score[present] - mean) / std
        weights[present] += stream.weight
        if stream.map is not None:
            z = (_pooled(stream.map, grid) - mean) / std
            heatmap[present] += stream.weight * z[present]
    weights = weights.clamp_min(1e-12)
    fused = functional.softplus(total / weights)
    return fused, functional.softplus(heatmap / weights.view(-1, 1, 1))


def calibrated_max(streams: list[Stream]) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest (gained) surprise of any stream a frame has (0 when it has none), and per
    cell the largest of a localising stream's cell or a whole-frame stream."""
    grid = _grid(streams)
    n = streams[0].score.shape[0]
    fused, heatmap = torch.zeros(n), torch.zeros((n, *grid))
    for stream in streams:
        assert stream.tail is not None
        score = stream.gain * surprise(stream.score, stream.tail)
        present = ~torch.isnan(score)
        fused[present] = torch.maximum(fused[present], score[present])
        if stream.map is None:
            cells = score.view(-1, 1, 1).expand(n, *grid)
        else:
            cells = stream.gain * surprise(_pooled(stream.map, grid), stream.tail)
        heatmap[present] = torch.maximum(heatmap[present], cells[present])
    return fused, heatmap
