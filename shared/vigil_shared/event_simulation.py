"""A clip's frame scores replayed through the real event lifecycle: which events it would raise.

The one_class fit uses it to set a threshold by false alarms per camera-hour *of events* (after
the k-of-n debounce, as operators see them), and the benchmarks to count found anomalies, their
delays and the false alarms, all through the same ``CameraLifecycle`` the inference worker runs,
so a rule changed there changes here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vigil_shared.event_lifecycle import (
    CameraLifecycle,
    LifecycleSettings,
    Observation,
    Transition,
)
from vigil_shared.schemas.events import EventPhase, ModelRef

_MODEL = ModelRef(id="replay", kind="registry")
_START = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimulatedEvent:
    """Frame indices of one event: its first hot frame, the frame that opened it (the k-th hot
    one, when the operator hears of it), its last hot frame; its peak score and frame."""

    first: int
    opened: int
    last: int
    peak: float
    peak_at: int


def replay(
    scores: Sequence[float], *, threshold: float, settings: LifecycleSettings, fps: float
) -> list[SimulatedEvent]:
    """Events a camera sending ``scores`` (one clip, in order, ``fps`` frames a second) would
    raise at ``threshold``; an event still open at the clip's end counts, ended there."""
    lifecycle = CameraLifecycle(settings)
    events: list[SimulatedEvent] = []
    opened = 0
    step = timedelta(seconds=1.0 / fps)
    for index, score in enumerate(scores):
        frame = Observation(
            camera_id="replay",
            seq=index,
            captured_at=_START + index * step,
            offset=index,
            score=score,
            threshold=threshold,
            model=_MODEL,
            jpeg=b"",
        )
        for transition in lifecycle.observe(frame, received_at=0.0):
            if transition.phase is EventPhase.START:
                opened = index
            elif transition.phase is EventPhase.END:
                events.append(_finished(transition, opened, fps))
    events += [_finished(t, opened, fps) for t in lifecycle.end()]
    return events


def _finished(end: Transition, opened: int, fps: float) -> SimulatedEvent:
    def index(at: datetime | None) -> int:
        assert at is not None
        return round((at - _START).total_seconds() * fps)

    return SimulatedEvent(
        index(end.started_at), opened, index(end.ended_at), end.peak.score, end.peak.seq
    )
