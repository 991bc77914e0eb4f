"""A dataset as ordered clips, split by clip into bank, held-out normal and labeled validation.

Motion needs a group's frames in capture order, and an honest threshold needs frames the banks
have not seen from clips they have not seen either: neighbouring frames of one clip are near
duplicates, so a random-frame split would calibrate on what is effectively training data.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from minio import Minio

from vigil_shared.dataset_groups import cut_count, footage_rate, is_event_group
from vigil_shared.datasets import DatasetError, DatasetItem, DatasetManifest, read_image
from vigil_shared.vision.preprocess import UndecodableImageError, decode

NORMAL_LABELS = frozenset({"normal"})


@dataclass(frozen=True)
class Clip:
    """A group's items in capture order; ``abnormal[i]`` is True for a labeled anomaly."""

    group: str
    items: tuple[DatasetItem, ...]
    abnormal: tuple[bool, ...]

    @property
    def is_normal(self) -> bool:
        return not any(self.abnormal)


@dataclass(frozen=True)
class ClipSplit:
    fit: tuple[Clip, ...]
    holdout: tuple[Clip, ...]
    validation: tuple[Clip, ...]


@dataclass(frozen=True)
class Fold:
    """Clips scored by a model whose banks are fitted on ``bank`` only (never on them)."""

    bank: tuple[Clip, ...]
    scored: tuple[Clip, ...]


def is_abnormal(item: DatasetItem) -> bool:
    return item.label is not None and item.label not in NORMAL_LABELS


def _order(item: DatasetItem) -> tuple[int, str, str]:
    sequence = item.sequence if item.sequence is not None else -1
    captured = item.captured_at.isoformat() if item.captured_at is not None else ""
    return sequence, captured, item.key


def clips_of(dataset: DatasetManifest) -> list[Clip]:
    """Items grouped by ``group`` and ordered by ``sequence`` (then capture time, then key)."""
    groups: dict[str, list[DatasetItem]] = defaultdict(list)
    for item in dataset.items:
        groups[item.group].append(item)
    clips = []
    for group in sorted(groups):
        items = tuple(sorted(groups[group], key=_order))
        clips.append(Clip(group, items, tuple(is_abnormal(i) for i in items)))
    return clips


def segmented(clips: Sequence[Clip], *, fps: float, segment_s: float | None) -> list[Clip]:
    """Normal footage of at least ``2 * segment_s`` cut into consecutive groups of about
    ``segment_s`` (``<group>#001``, ...), by frame count at the footage's rate ``fps`` (so a
    silence in a recording makes no short piece); other clips as they are.

    A site's normal footage often comes as one long recording (a camera's hour is one group),
    and the split needs groups: two at least, five for the scene stream, more for cross-fitted
    folds. Pieces of one recording are as independent as separate clips of it, but for their
    boundaries, where a bank's last frames and a held-out piece's first are neighbours; the
    threshold rests on the noisiest normal frames, which such a second rarely holds. Clips with
    labeled anomalies stay whole (a labeled interval is not cut), and so do reviewed events.
    """
    out: list[Clip] = []
    for clip in clips:
        n = len(clip.items)
        pieces = cut_count(n, fps=fps, segment_s=segment_s)
        if not clip.is_normal or is_event_group(clip.group) or pieces < 2:
            out.append(clip)
            continue
        bounds = [round(n * piece / pieces) for piece in range(pieces + 1)]
        for piece in range(pieces):
            items = clip.items[bounds[piece] : bounds[piece + 1]]
            out.append(Clip(f"{clip.group}#{piece + 1:03d}", items, (False,) * len(items)))
    return out


def split_clips(clips: list[Clip], *, holdout_fraction: float, seed: int) -> ClipSplit:
    """Normal clips go to the banks or (a seeded ``holdout_fraction`` of them) to calibration;
    clips with labeled anomalies only ever to validation.

    A reviewed false alarm (an event's group labeled normal) always goes to the banks: it is the
    site saying what normal looks like, which the banks learn and a held-out quantile does not;
    and it was picked for scoring hot, so held out it would bias the estimate of how often
    ordinary time raises an alarm. Only when nothing else is normal is it held out like footage.
    """
    normal = [c for c in clips if c.is_normal]
    validation = tuple(c for c in clips if not c.is_normal)
    if len(normal) < 2:
        raise DatasetError(
            f"dataset has {len(normal)} group(s) of normal frames; a one_class job needs at "
            "least 2 (one for the memory banks, one held out to set the threshold): give the "
            "frames of different clips or cameras different groups"
        )
    footage = [c for c in normal if not is_event_group(c.group)]
    pool, pinned = (
        (footage, [c for c in normal if is_event_group(c.group)]) if footage else (normal, [])
    )
    shuffled = pool[:]
    random.Random(seed).shuffle(shuffled)
    keep_one = 0 if pinned else 1  # the banks need a group of their own
    n_holdout = min(len(pool) - keep_one, max(1, round(len(pool) * holdout_fraction)))
    holdout = sorted(shuffled[:n_holdout], key=lambda c: c.group)
    fit = sorted([*shuffled[n_holdout:], *pinned], key=lambda c: c.group)
    return ClipSplit(fit=tuple(fit), holdout=tuple(holdout), validation=validation)


def calibration_folds(split: ClipSplit, *, folds: int, seed: int) -> tuple[Fold, ...]:
    """Every normal group scored once by banks that never saw it: the held-out groups by the
    model's own banks, and (``folds`` > 1) the bank groups cross-fitted, ``folds`` seeded
    partitions of them each scored by banks of the others (``folds`` at most the groups).

    One held-out fifth of a site's footage is a few clips; its threshold then sits wherever
    their noise happens to be. Cross-fitting calibrates on all of the normal time instead, at
    the cost of fitting the banks once per fold. A fold's banks hold a fold fewer groups than
    the model's, so its scores run a little high and the threshold errs on the quiet side.
    Reviewed false alarms are in every bank and never scored (``split_clips``).
    """
    out = [Fold(bank=split.fit, scored=split.holdout)]
    any_footage = any(not is_event_group(c.group) for c in split.fit + split.holdout)
    scorable = [c for c in split.fit if not any_footage or not is_event_group(c.group)]
    n_folds = min(folds, len(scorable))
    pinned = len(split.fit) > len(scorable)
    if folds < 2 or n_folds < (1 if pinned else 2):  # a fold's banks need a group of their own
        return tuple(out)
    shuffled = scorable[:]
    random.Random(seed).shuffle(shuffled)
    for index in range(n_folds):
        scored = sorted(shuffled[index::n_folds], key=lambda c: c.group)
        names = {c.group for c in scored}
        rest = [c for c in split.fit if c.group not in names]
        out.append(Fold(bank=tuple(rest), scored=tuple(scored)))
    return tuple(out)


def frame_rate(clips: Sequence[Clip], default: float | None = None) -> float:
    """Frames per second from the median spacing of consecutive capture times (``footage_rate``);
    without them ``default`` (a spec's ``footage_fps``), else ``DEFAULT_FPS``."""
    return footage_rate(([item.captured_at for item in clip.items] for clip in clips), default)


def capture_times(clip: Clip) -> list[float] | None:
    """The clip's capture times in seconds, in order; None unless every frame has one."""
    times = [item.captured_at for item in clip.items]
    if any(t is None for t in times):
        return None
    return [t.timestamp() for t in times if t is not None]


def read_frames(s3: Minio, bucket: str, clip: Clip, *, chunk: int) -> Iterator[list[torch.Tensor]]:
    """A clip's frames, decoded to uint8 CHW on the CPU, ``chunk`` at a time, in order."""
    for start in range(0, len(clip.items), chunk):
        frames = []
        for item in clip.items[start : start + chunk]:
            try:
                frames.append(decode(read_image(s3, bucket, item)))
            except UndecodableImageError as exc:
                name = item.source_name or item.key
                raise DatasetError(f"{name}: {exc}; remove or replace the image") from exc
        yield frames
