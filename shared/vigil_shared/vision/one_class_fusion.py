"""How a one_class model's streams become one frame score and one heatmap.

Each stream gives a raw frame score (NaN where it has none yet: a camera's first frame has no
motion) and, for the streams that localise, a map. Three fusions (``OneClassSpec.fusion``):

- ``weighted``: the weighted mean of z-scores (normalised by the held-out normal frames' mean
  and std), weights renormalised over the streams a frame has, through softplus. A stream's
  influence is its weight whatever it sees: a strong signal of a low-weight stream is drowned.
- ``calibrated_max``: each score as its surprise under the site's normal frames
  (``tail_scores.surprise``, about ``-ln`` of the normal exceedance probability), and the
  largest wins. Comparable by construction, so any stream alarms on its own and no weight is
  chosen. Already >= 0, no softplus. A model fitted on enough labeled anomalies may carry a
  non-negative gain per stream (``max_s(g_s * surprise_s)``, the trainer's ``label_fusion``);
  without one every gain is 1.
- ``calibrated_sum``: the same surprises, combined by Fisher's method: their sum ``S`` over
  the ``k`` streams a frame has, read as the surprise of a sum of ``k`` independent
  ``Exp(1)`` surprises, ``S - ln(sum_{i<k} S^i / i!)``. Two streams both somewhat unusual add
  up (a cyclist: faster than walkers *and* unlike them), where the max keeps only the larger;
  a single strong stream still alarms alone, a little later (``k = 2``, one stream at 10
  reads 7.6). Equal to the surprise itself for ``k = 1``, so frames with fewer streams (a
  camera's first) stay comparable.

The heatmap is on the coarsest stream grid; a whole-frame stream (no map) fills it evenly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional

from vigil_shared.schemas.one_class import Fusion
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


def fisher(total: torch.Tensor, streams: torch.Tensor) -> torch.Tensor:
    """The surprise of ``total``, a sum of ``streams`` independent ``Exp(1)`` surprises:
    ``-ln P(Gamma(streams) >= total)``; 0 where no stream is present."""
    total = total.double()
    k = streams.clamp_min(1)
    term, series = torch.ones_like(total), torch.ones_like(total)
    for i in range(1, int(k.max()) if k.numel() else 1):
        term = term * total / i
        series = series + torch.where(k > i, term, torch.zeros_like(term))
    return (total - series.log()).clamp_min(0.0).float()


def combine(surprises: torch.Tensor, gains: torch.Tensor, fusion: Fusion) -> torch.Tensor:
    """The fused score of ``(..., streams)`` surprises (NaN: the stream is absent) with
    per-stream ``gains`` (a stream with gain 0 is absent): their largest, or Fisher's
    combination (module docstring)."""
    present = ~torch.isnan(surprises) & (gains > 0)
    gained = torch.where(present, surprises * gains, torch.zeros_like(surprises))
    if fusion == "calibrated_max":
        return gained.amax(dim=-1)
    if fusion != "calibrated_sum":
        raise ValueError(f"fusion {fusion!r} does not combine surprises")
    return fisher(gained.sum(dim=-1), present.sum(dim=-1))


def frame_surprises(streams: list[Stream]) -> tuple[torch.Tensor, torch.Tensor]:
    """The (N, streams) surprises of the frames (NaN: the stream has no score) and the
    streams' gains."""
    surprises = []
    for stream in streams:
        assert stream.tail is not None
        surprises.append(surprise(stream.score, stream.tail))
    return torch.stack(surprises, dim=-1), torch.tensor([stream.gain for stream in streams])


def leading(surprises: torch.Tensor, gains: torch.Tensor) -> list[int | None]:
    """Per frame, the index of the stream whose gained surprise is largest (what the frame is
    most unusual in, and under ``calibrated_max`` its score); None where no stream scores."""
    present = ~torch.isnan(surprises) & (gains > 0)
    gained = torch.where(present, surprises * gains, torch.full_like(surprises, -torch.inf))
    best = gained.argmax(dim=-1).tolist()
    return [i if any_ else None for i, any_ in zip(best, present.any(dim=-1).tolist(), strict=True)]


def calibrated(
    streams: list[Stream],
    fusion: Fusion,
    surprises: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The streams' surprises combined (``combine``) per frame and per cell of the coarsest
    grid, where a whole-frame stream counts in every cell (0 where a frame has no stream);
    ``surprises``: the streams' ``frame_surprises`` when the caller has them already."""
    grid = _grid(streams)
    n = streams[0].score.shape[0]
    frames, gains = surprises if surprises is not None else frame_surprises(streams)
    cells = []
    for stream, score in zip(streams, frames.unbind(dim=-1), strict=True):
        assert stream.tail is not None
        if stream.map is None:
            cell = score.view(-1, 1, 1).expand(n, *grid)
        else:
            cell = surprise(_pooled(stream.map, grid), stream.tail)
            cell = torch.where(torch.isnan(score).view(-1, 1, 1), float("nan"), cell)
        cells.append(cell)
    return combine(frames, gains, fusion), combine(torch.stack(cells, dim=-1), gains, fusion)
