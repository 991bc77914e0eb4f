"""What an operator would have seen: a scorer's frame scores replayed through the event lifecycle.

Frame-level AUROC ranks frames; a site sees *events*, opened by the k-of-n debounce and closed
after a run of quiet frames. This module replays per-clip score sequences through the very
lifecycle the inference worker runs (``vigil_shared.event_simulation.replay`` over
``vigil_shared.event_lifecycle``, default ``LifecycleSettings`` unless given), one clip as one
camera at its frame rate, and reports:

- **event recall**: an anomalous interval (a run of abnormal frames) is *found* when an event
  that overlaps it sends its ``start`` message within ``grace_s`` (1 s) of the interval's first
  abnormal frame, or was already open before it (it started earlier and still overlaps it);
  ``recall_eventually`` counts an overlapping event at any delay;
- **detection delay**: from the first abnormal frame to the frame whose ``start`` message was
  sent (0 for an event already open), median and maximum over the intervals found eventually;
- **false alarms per camera-hour**: events that overlap no anomalous interval, over the hours of
  normal frames (the time a false alarm could have been raised);
- **repeats**: events beyond the first on an anomalous interval, which an operator receives as
  new alerts of an incident already alerted (a score that dips and rises again);
- frame-level AUROC pooled over all clips, raw and causal (each clip's trailing mean, what a
  live camera can compute), and AUPR; per clip, its own AUROC and its share of the pooled raw
  AUROC's shortfall from 1 (``auroc_shortfall``: where a pooled figure is lost, its anomalies
  ranking under other clips' normal frames, which a clip's own AUROC does not show).

An event's span runs from its first hot frame (``started_at``) to its last hot frame
(``ended_at``); an event still open at a clip's end is ended there, as a camera falling silent
ends it. Frames are indices from 0 within a clip.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.event_simulation import SimulatedEvent, replay
from vigil_shared.vision.score_metrics import (
    auroc,
    auroc_shortfall,
    average_precision,
    trailing_mean,
)

GRACE_S = 1.0
CAUSAL_WINDOW = 9


@dataclass(frozen=True)
class Interval:
    """Frames ``first`` to ``last`` inclusive."""

    first: int
    last: int

    def overlaps(self, other: Interval) -> bool:
        return self.first <= other.last and other.first <= self.last


def span(event: SimulatedEvent) -> Interval:
    """An event's frames, from its first to its last hot frame."""
    return Interval(event.first, event.last)


def abnormal_intervals(labels: torch.Tensor) -> list[Interval]:
    """The runs of consecutive abnormal frames of a clip's boolean labels."""
    flags = labels.bool().tolist()
    out: list[Interval] = []
    start: int | None = None
    for index, abnormal in enumerate([*flags, False]):
        if abnormal and start is None:
            start = index
        elif not abnormal and start is not None:
            out.append(Interval(start, index - 1))
            start = None
    return out


@dataclass(frozen=True)
class ClipReplay:
    """A clip's anomalous intervals and the events its scores raised."""

    intervals: list[Interval]
    events: list[SimulatedEvent]
    n_frames: int
    n_normal: int

    def delays(self) -> list[int | None]:
        """Per interval, frames from its first abnormal frame to the first overlapping event's
        ``start`` message (0 when that event opened earlier); None when no event overlaps it."""
        out: list[int | None] = []
        for interval in self.intervals:
            opened = [e.opened for e in self.events if span(e).overlaps(interval)]
            out.append(max(0, min(opened) - interval.first) if opened else None)
        return out

    def false_alarms(self) -> list[SimulatedEvent]:
        return [e for e in self.events if not any(span(e).overlaps(i) for i in self.intervals)]

    def repeats(self) -> int:
        """Events on an interval beyond the first on it (an event over two intervals counts
        once for each)."""
        return sum(
            max(0, sum(span(e).overlaps(i) for e in self.events) - 1) for i in self.intervals
        )


def replay_clip(
    scores: torch.Tensor,
    labels: torch.Tensor,
    *,
    threshold: float,
    fps: float,
    settings: LifecycleSettings | None = None,
) -> ClipReplay:
    if scores.numel() != labels.numel():
        raise ValueError(f"{scores.numel()} scores for {labels.numel()} labels")
    return ClipReplay(
        intervals=abnormal_intervals(labels),
        events=replay(
            scores.tolist(), threshold=threshold, settings=settings or LifecycleSettings(), fps=fps
        ),
        n_frames=labels.numel(),
        n_normal=int((~labels.bool()).sum()),
    )


@dataclass(frozen=True)
class EventFigures:
    intervals: int
    found: int
    found_eventually: int
    recall: float | None
    recall_eventually: float | None
    median_delay_s: float | None
    max_delay_s: float | None
    events: int
    false_alarms: int
    repeats: int
    normal_hours: float
    false_alarms_per_hour: float | None


def event_figures(
    replays: Sequence[ClipReplay], *, fps: float, grace_s: float = GRACE_S
) -> EventFigures:
    """Recall, delays and false alarms over clips replayed at ``fps``."""
    delays = [d / fps for r in replays for d in r.delays() if d is not None]
    n_intervals = sum(len(r.intervals) for r in replays)
    found = sum(d <= grace_s + 1e-9 for d in delays)
    false_alarms = sum(len(r.false_alarms()) for r in replays)
    normal_hours = sum(r.n_normal for r in replays) / fps / 3600
    return EventFigures(
        intervals=n_intervals,
        found=found,
        found_eventually=len(delays),
        recall=found / n_intervals if n_intervals else None,
        recall_eventually=len(delays) / n_intervals if n_intervals else None,
        median_delay_s=statistics.median(delays) if delays else None,
        max_delay_s=max(delays) if delays else None,
        events=sum(len(r.events) for r in replays),
        false_alarms=false_alarms,
        repeats=sum(r.repeats() for r in replays),
        normal_hours=normal_hours,
        false_alarms_per_hour=false_alarms / normal_hours if normal_hours else None,
    )


def frame_figures(
    scores: Mapping[str, torch.Tensor],
    labels: Mapping[str, torch.Tensor],
    *,
    causal_window: int = CAUSAL_WINDOW,
) -> dict[str, float | None]:
    """Pooled frame-level AUROC (raw and trailing-mean smoothed per clip) and AUPR."""
    clips = sorted(scores)
    y = torch.cat([labels[c].bool() for c in clips])
    raw = torch.cat([scores[c].double() for c in clips])
    causal = torch.cat([trailing_mean(scores[c].double(), causal_window) for c in clips])
    figures = {
        "auroc": auroc(raw, y),
        f"auroc_causal{causal_window}": auroc(causal, y),
        "aupr": average_precision(raw, y),
    }
    return {name: None if value != value else value for name, value in figures.items()}


def evaluate(
    scores: Mapping[str, torch.Tensor],
    labels: Mapping[str, torch.Tensor],
    *,
    threshold: float,
    fps: float,
    settings: LifecycleSettings | None = None,
    grace_s: float = GRACE_S,
    causal_window: int = CAUSAL_WINDOW,
) -> dict[str, Any]:
    """Frame- and event-level figures of per-clip scores, with each clip's events (JSON-ready).

    NaN scores (a stream with nothing to say yet) are quiet frames for the lifecycle; give
    frame figures finite scores."""
    clips = sorted(scores)
    replays = {
        clip: replay_clip(
            scores[clip], labels[clip], threshold=threshold, fps=fps, settings=settings
        )
        for clip in clips
    }
    shortfall = auroc_shortfall(
        torch.cat([scores[c].double() for c in clips]),
        torch.cat([labels[c].bool() for c in clips]),
        torch.cat([torch.full((len(scores[c]),), i) for i, c in enumerate(clips)]),
    )
    return {
        "threshold": threshold,
        "frames": frame_figures(scores, labels, causal_window=causal_window),
        "events": asdict(event_figures(list(replays.values()), fps=fps, grace_s=grace_s)),
        "clips": {
            clip: _clip_report(
                r, auroc(scores[clip].double(), labels[clip].bool()), shortfall.get(i)
            )
            for i, (clip, r) in enumerate(replays.items())
        },
    }


def _clip_report(
    replayed: ClipReplay, clip_auroc: float, shortfall: float | None
) -> dict[str, Any]:
    return {
        "auroc": None if clip_auroc != clip_auroc else clip_auroc,  # NaN: one class only
        "auroc_shortfall": shortfall,
        "intervals": [[i.first, i.last] for i in replayed.intervals],
        "delays_frames": replayed.delays(),
        "events": [[e.first, e.opened, e.last] for e in replayed.events],
        "peaks": [e.peak_at for e in replayed.events],
        "false_alarms": len(replayed.false_alarms()),
    }
