"""Stream scores made comparable: the surprise of a score under the site's normal frames.

A stream's raw score (a kNN distance, a flow magnitude) is in its own units, and its normal
spread differs from site to site and stream to stream. ``fit_tail`` reads a stream's scores on
held-out normal frames; ``surprise`` then maps any score to about ``-ln P(normal >= score)``:

- above ``u``, the held-out ``TAIL_SHARE`` quantile, an exponential tail fitted to the held-out
  excesses (mean excess ``beta``): ``-ln(TAIL_SHARE) + (x - u) / beta``, which keeps counting
  beyond the largest normal score instead of saturating as an empirical quantile would;
- from the median up to ``u``, a straight line from 0 to ``-ln(TAIL_SHARE)``; below the
  median, 0.

So a score every normal frame could have reads near 0, one that one normal frame in a thousand
exceeds reads about 6.9 (``ln 1000``) in every stream, and streams can be compared and combined
by their largest surprise: any stream can alarm on its own. Two-sided streams (too little is as
unusual as too much) fit both tails and charge ``ln 2`` for looking both ways.

A fitted tail is a (sides, 4) tensor of ``(median, u, beta, tail share)`` rows: row 0 for the
score, row 1 (two-sided only) for the negated score.
"""

from __future__ import annotations

import math

import torch

TAIL_SHARE = 0.1
"""Share of held-out normal frames the exponential tail is fitted to: the usual
peaks-over-threshold choice, enough excesses (10 of 100 frames) for a mean."""


def _side(values: torch.Tensor) -> torch.Tensor:
    present = values[~torch.isnan(values)].double()
    if present.numel() < 2:
        return torch.tensor([0.0, 0.0, 1.0, TAIL_SHARE], dtype=torch.float64)
    median = float(present.median())
    u = float(torch.quantile(present, 1.0 - TAIL_SHARE))
    excess = present[present > u] - u
    spread = float(present.std())
    # Floors on the scale: a few nearly equal excesses would make the tail too steep (hence a
    # tenth of the spread), and a stream that never varies on normal frames (a still camera's
    # motion) would otherwise make the slightest change infinitely surprising.
    floor = max(1e-3 * (abs(u) + spread), 1e-6)
    beta = max(float(excess.mean()) if excess.numel() else 0.0, spread * 0.1, floor)
    return torch.tensor([median, u, beta, TAIL_SHARE], dtype=torch.float64)


def fit_tail(values: torch.Tensor, *, two_sided: bool = False) -> torch.Tensor:
    """The tail of a stream's held-out normal scores (NaN, no score yet, left out)."""
    sides = [_side(values)] + ([_side(-values)] if two_sided else [])
    return torch.stack(sides).float()


def _one_side(values: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    median, u, beta, share = (float(v) for v in row)
    at_u = -math.log(share)
    body = at_u * (values - median) / max(u - median, 1e-12)
    out = torch.where(values > u, at_u + (values - u) / beta, body)
    return out.clamp_min(0.0)


def surprise(values: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """About ``-ln P(normal >= value)`` under ``tail`` (``fit_tail``); NaN stays NaN."""
    values = values.float()
    out = _one_side(values, tail[0])
    if tail.shape[0] > 1:
        out = (torch.maximum(out, _one_side(-values, tail[1])) - math.log(2.0)).clamp_min(0.0)
    return torch.where(torch.isnan(values), values, out)
