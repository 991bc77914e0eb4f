"""Per-stream gains for the calibrated fusions, fitted on labeled anomalies when there are enough.

Surprises make the streams comparable under the site's normal frames, not equally useful against
its anomalies: a stream that only varies where nothing is wrong (a scene stream on a busy
street) adds false alarms everywhere and catches nothing the others miss. With labels (a
dataset's labeled anomalies, a site's confirmed events: ``fit.enough_labels``) the fusion
combines ``g_s * surprise_s`` (``max_s`` for ``calibrated_max``, Fisher's sum for
``calibrated_sum``): still "any stream alarms on its own" and >= 0, with an unhelpful
stream's gain lowered or 0.

The gains come from a small grid, largest gain 1 (only their ratios change the ranking), not
from an optimiser: frame AUROC is a step function of the gains, and a fine fit on ten events'
frames would learn those events. They are adopted only where chosen on some groups they beat
the plain fusion (every gain 1) on the others (grouped K-fold, by clip, so an event's
neighbouring frames never judge their own fit) by ``ADOPT_MARGIN`` in pooled held-out AUROC:
pooled because one threshold serves all footage, so the scores must rank across groups, not
only within each. Otherwise the model keeps the plain fusion, which needs no labels to be
right.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.vision.one_class_fusion import Stream, combine
from vigil_shared.vision.one_class_model import OneClassScorer, calibrated_tails, over_time
from vigil_shared.vision.score_metrics import auroc
from vigil_shared.vision.tail_scores import surprise
from vigil_trainer.one_class.calibrate import ClipScores

GAIN_GRID = (0.0, 0.5, 1.0)
"""Each stream's gain, the largest scaled to 1: off, half or full. 65 candidates for four
streams (a quarter step as well would make 175): each costs an AUROC per fold over every
frame, and every extra candidate is another chance to fit the labeled events' luck."""
FOLDS = 5
ADOPT_MARGIN = 0.005
"""Held-out AUROC the fitted gains must gain over the plain fusion: with a few hundred labeled
frames from ten events a smaller difference is as likely the folds' luck as a better fusion."""


@dataclass(frozen=True)
class LabelFusion:
    """The gains to store (None: the plain fusion) and what the fit measured."""

    gains: torch.Tensor | None  # (streams,), ``calibrated_tails`` order
    metrics: dict[str, float]


@dataclass(frozen=True)
class _Frames:
    """Every labeled and held-out frame, clip after clip: its streams' surprises (NaN where a
    frame lacks a stream), its label and its group's fold; the clips' lengths (a smoothing
    window stays within its clip), the model's window and the fusion that combines them."""

    surprises: torch.Tensor  # (F, S)
    abnormal: torch.Tensor  # (F,) bool
    fold: torch.Tensor  # (F,) int
    clip_frames: list[int]
    spec: OneClassSpec  # how the model fuses and combines over time

    @property
    def all(self) -> torch.Tensor:
        return torch.ones_like(self.abnormal)

    def scores(self, gains: torch.Tensor) -> torch.Tensor:
        """The fused scores, over time (``over_time``), the model would give with ``gains``."""
        fused = combine(self.surprises, gains, self.spec.fusion).double()
        clips = torch.split(fused, self.clip_frames)
        return torch.cat([over_time(self.spec, clip) for clip in clips])


def fit_fusion_gains(
    scorer: OneClassScorer, clips: Sequence[ClipScores], *, seed: int
) -> LabelFusion | None:
    """Gains for ``scorer``'s calibrated streams (tails already fitted) from ``clips`` (held-out
    normal and labeled groups, one clip a group); None where there is nothing to fit: another
    fusion, a single stream, or fewer than two labeled groups."""
    streams = calibrated_tails(scorer.spec)
    labeled = sum(bool(c.abnormal.any()) for c in clips)
    if len(streams) < 2 or labeled < 2:
        return None
    folds = list(range(min(FOLDS, labeled)))  # each holds a labeled group (``_group_folds``)
    frames = _frames(scorer, clips, folds=len(folds), seed=seed)
    candidates = _candidates(len(streams))
    # Gains chosen on every fold's complement, and (last) on every frame.
    chosen = _best(frames, candidates, [frames.fold != fold for fold in folds] + [frames.all])
    before = auroc(frames.scores(candidates[0]), frames.abnormal)
    after = auroc(_held_out(frames, folds, chosen[:-1]), frames.abnormal)
    adopted = after > before + ADOPT_MARGIN
    gains = chosen[-1] if adopted else candidates[0]
    metrics = {
        "fusion_from_labels": float(adopted),
        "fusion_heldout_auroc_max": before,
        "fusion_heldout_auroc_fitted": after,
    }
    metrics |= {
        f"fusion_gain_{name.split('.')[0]}": gain
        for name, gain in zip(streams, gains.tolist(), strict=True)
    }
    return LabelFusion(gains=gains if adopted else None, metrics=metrics)


def _candidates(streams: int) -> list[torch.Tensor]:
    """The grid up to scale, the plain fusion (all 1) first so that it wins ties."""
    unique = {(1.0,) * streams: None}
    for gains in itertools.product(GAIN_GRID, repeat=streams):
        top = max(gains)
        if top > 0:
            unique.setdefault(tuple(g / top for g in gains), None)
    return [torch.tensor(gains) for gains in unique]


def _best(
    frames: _Frames, candidates: list[torch.Tensor], subsets: list[torch.Tensor]
) -> list[torch.Tensor]:
    """For each subset of frames (a boolean mask), the candidate with the highest AUROC on it,
    the first of ties; each candidate's scores are computed once."""
    areas = torch.zeros((len(candidates), len(subsets)), dtype=torch.float64)
    for row, gains in enumerate(candidates):
        scores = frames.scores(gains)
        for column, subset in enumerate(subsets):
            areas[row, column] = auroc(scores[subset], frames.abnormal[subset])
    best = areas.nan_to_num(-1.0).argmax(dim=0)  # argmax: the first of equal maxima
    return [candidates[int(i)] for i in best]


def _held_out(frames: _Frames, folds: list[int], gains: list[torch.Tensor]) -> torch.Tensor:
    """Each fold's frames scored with the gains chosen without it."""
    out = torch.empty(frames.abnormal.numel(), dtype=torch.float64)
    for fold, fold_gains in zip(folds, gains, strict=True):
        kept = frames.fold == fold
        out[kept] = frames.scores(fold_gains)[kept]
    return out


def _frames(
    scorer: OneClassScorer, clips: Sequence[ClipScores], *, folds: int, seed: int
) -> _Frames:
    fold_of = _group_folds(clips, folds=folds, seed=seed)
    surprises = [
        torch.cat([_surprises(scorer.calibrated_streams(raw)) for raw in clip.raw])
        for clip in clips
    ]
    sizes = [values.shape[0] for values in surprises]
    return _Frames(
        surprises=torch.cat(surprises),
        abnormal=torch.cat([c.abnormal.bool() for c in clips]),
        fold=torch.cat([torch.full((n,), fold) for n, fold in zip(sizes, fold_of, strict=True)]),
        clip_frames=sizes,
        spec=scorer.spec,
    )


def _surprises(streams: list[Stream]) -> torch.Tensor:
    """(N, streams) surprises, ungained: the fit chooses the gains."""
    columns = []
    for stream in streams:
        assert stream.tail is not None  # ``calibrated_streams`` gives each stream its tail
        columns.append(surprise(stream.score, stream.tail))
    return torch.stack(columns, dim=1)


def _group_folds(clips: Sequence[ClipScores], *, folds: int, seed: int) -> list[int]:
    """A fold per clip, labeled and normal clips dealt out separately, so that every fold holds
    both classes (``folds`` is at most the number of labeled clips)."""
    rng = random.Random(seed)
    fold_of = [0] * len(clips)
    for labeled in (True, False):
        members = [i for i, c in enumerate(clips) if bool(c.abnormal.any()) == labeled]
        rng.shuffle(members)
        for position, index in enumerate(members):
            fold_of[index] = position % folds
    return fold_of
