"""Groups for footage from one camera: the unit a held-out evaluation sets aside.

A dataset built from one camera used to be one group, and a job needs at least two (one for the
memory banks, one held out), so a single-camera site could not train on its own footage. Frames
are grouped by time instead: a contiguous segment of capture times (split where the camera was
silent for more than ``gap_s`` and at most ``segment_s`` long) is one group, named after its
camera and its first frame's time; every reviewed event is a group of its own. Neighbouring
frames stay together, so a held-out group is not a near copy of a training frame.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from vigil_shared.datasets import NewImage

DEFAULT_GAP_S = 60.0
DEFAULT_SEGMENT_S = 3600.0
DEFAULT_FPS = 10.0
"""Footage's frame rate when its frames carry no capture times (an uploaded archive)."""


def segment_starts(
    times: Sequence[datetime], *, gap_s: float = DEFAULT_GAP_S, segment_s: float = DEFAULT_SEGMENT_S
) -> list[int]:
    """For times in capture order, the index of the first frame of each one's segment.

    A segment ends before a frame more than ``gap_s`` after the previous one, or at least
    ``segment_s`` after the segment's first frame."""
    if gap_s <= 0 or segment_s <= 0:
        raise ValueError(f"gap_s and segment_s must be positive, got {gap_s} and {segment_s}")
    firsts: list[int] = []
    for index, at in enumerate(times):
        if index and at < times[index - 1]:
            raise ValueError("times must be in capture order")
        first = firsts[-1] if firsts else 0
        new = index == 0 or (
            (at - times[index - 1]).total_seconds() > gap_s
            or (at - times[first]).total_seconds() >= segment_s
        )
        firsts.append(index if new else first)
    return firsts


def segment_group(camera_id: str, start: datetime) -> str:
    """``<camera>/<first frame, UTC to the millisecond>``: sorts in time, unique per camera."""
    return f"{camera_id}/{start.strftime('%Y%m%dT%H%M%S.%f')[:-3]}Z"


def event_group(camera_id: str, event_id: str) -> str:
    return f"{camera_id}/event-{event_id}"


def is_event_group(group: str) -> bool:
    """Whether a group is one reviewed event's (``event_group``), not a segment of footage."""
    return "/event-" in group


def group_by_time(
    images: Sequence[NewImage],
    *,
    gap_s: float = DEFAULT_GAP_S,
    segment_s: float = DEFAULT_SEGMENT_S,
) -> list[NewImage]:
    """The images (of one camera, with capture times) regrouped into time segments, in
    capture order."""
    ordered = sorted(images, key=_capture_order)
    times = [_captured(image) for image in ordered]
    firsts = segment_starts(times, gap_s=gap_s, segment_s=segment_s)
    return [
        replace(image, group=segment_group(image.camera_id or image.group, times[first]))
        for image, first in zip(ordered, firsts, strict=True)
    ]


def _captured(image: NewImage) -> datetime:
    if image.captured_at is None:
        raise ValueError(f"{image.source_name or 'an image'} has no capture time to group by")
    return image.captured_at


def _capture_order(image: NewImage) -> tuple[datetime, int]:
    return _captured(image), image.sequence if image.sequence is not None else -1


def footage_rate(
    groups: Iterable[Sequence[datetime | None]], default: float | None = None
) -> float:
    """Frames per second of footage given as each group's capture times in order: the median
    spacing of consecutive times within a group (a silence between groups, or within one, is
    not a frame interval); without any, ``default`` (a spec's ``footage_fps``), else
    ``DEFAULT_FPS``."""
    gaps = [
        (b - a).total_seconds()
        for times in groups
        for a, b in itertools.pairwise(times)
        if a is not None and b is not None
    ]
    spacing = statistics.median([g for g in gaps if g > 0] or [0.0])
    return 1.0 / spacing if spacing > 0 else default or DEFAULT_FPS


def cut_count(frames: int, *, fps: float, segment_s: float | None) -> int:
    """Into how many groups a one_class fit cuts a normal recording of ``frames`` at ``fps``
    (its spec's ``segment_s``): one (left whole) below twice ``segment_s`` or without it. By
    frame count, so a silence inside the recording makes no short piece. The API asks this
    before it stores a camera's footage, the trainer when it cuts: one rule for both."""
    if segment_s is None:
        return 1
    return max(1, int(frames / fps // segment_s))
