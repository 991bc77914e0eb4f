"""Scores to event lifecycles, per camera: debounce, start, update, end. Pure: no I/O, no clock.

A camera's event opens when ``open_k`` of its last ``open_n`` frames reach the threshold (on its
model's calibrated debounce where its frames carry one: ``Debounce``), sends an
``update`` when the peak rose (at most one per ``update_interval_s`` of capture time), and ends
after ``close_after`` consecutive quiet frames, at ``max_duration_s``, when the camera falls silent
(``silence_s``) or restarts (its sequence goes back), or when its model changes.

Every decision uses the frames' own capture times and sequence numbers, never the wall clock, so
the same frames give the same messages with the same ids. ``resume_frame`` says from which
frame a camera's state can be rebuilt: the worker commits offsets no further (nor past the frames
that frame's score depends on, ``Observation.context_from``), so after a crash the replayed
frames rebuild an open event (and a half-filled debounce window) exactly.

It lives in ``shared`` so that code outside inference judges scores by the events they would
raise: ``vigil_shared.event_simulation`` replays it over a clip's scores for the event-level
figures of ``vision.event_metrics`` (and for a fit that sets its threshold by events per hour).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vigil_shared.schemas.events import (
    EventMessage,
    EventPhase,
    ModelRef,
    event_id_for,
    message_id_for,
)

if TYPE_CHECKING:  # the API's loop process runs the lifecycle too, and its image has no torch
    import torch


@dataclass(frozen=True)
class LifecycleSettings:
    open_k: int = 3
    open_n: int = 5
    close_after: int = 5
    close_ratio: float = 1.0
    """Hysteresis: a frame is quiet below ``threshold * close_ratio`` (<= 1)."""
    update_interval_s: float = 2.0
    max_duration_s: float = 300.0
    silence_s: float = 10.0

    def __post_init__(self) -> None:
        Debounce.of(self)  # refuses a k of n no window can hold, a close that never comes


CALIBRATED_OPEN_K = "lifecycle_open_k"
CALIBRATED_OPEN_N = "lifecycle_open_n"
CALIBRATED_CLOSE_AFTER = "lifecycle_close_after"
CALIBRATED_CLOSE_RATIO = "lifecycle_close_ratio"
"""The fit metrics that record the debounce a model's false-alarm rate was calibrated for (the
open since 7 Dec, the close since 8 Dec): the trainer writes them, and whatever raises that
model's events opens and closes them so (``Debounce.calibrated``)."""


@dataclass(frozen=True)
class Debounce:
    """An event opens when ``open_k`` of a camera's last ``open_n`` frames are hot, and closes
    after ``close_after`` frames below ``threshold * close_ratio`` (None: not recorded, the
    deployment's).

    A model whose threshold was calibrated for a false-alarm rate of *events* carries the
    debounce it was calibrated with: the same threshold behind a quicker open raises several
    times the alarms (2 of 3 needs a threshold half as high again as 3 of 5 for the same rate,
    docs/one-class.md), and another close counts other events, so its frames open and close
    events on its own debounce, whatever the deployment's default for other models."""

    open_k: int
    open_n: int
    close_after: int | None = None
    close_ratio: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.open_k <= self.open_n:
            raise ValueError(f"need 1 <= open_k <= open_n, got {self.open_k} of {self.open_n}")
        if self.close_after is not None and self.close_after < 1:
            raise ValueError(f"close_after must be at least 1, got {self.close_after}")
        if self.close_ratio is not None and not 0 < self.close_ratio <= 1:
            raise ValueError(f"close_ratio must be in (0, 1], got {self.close_ratio}")

    @classmethod
    def calibrated(cls, metrics: Mapping[str, Any]) -> Debounce | None:
        """The debounce a fit recorded in its metrics; None when it recorded none (models
        fitted before 7 Dec, classify models, the warm-up)."""
        k, n = metrics.get(CALIBRATED_OPEN_K), metrics.get(CALIBRATED_OPEN_N)
        if k is None or n is None:
            return None
        after, ratio = metrics.get(CALIBRATED_CLOSE_AFTER), metrics.get(CALIBRATED_CLOSE_RATIO)
        return cls(
            int(k),
            int(n),
            None if after is None else int(after),
            None if ratio is None else float(ratio),
        )

    @classmethod
    def of(cls, settings: LifecycleSettings) -> Debounce:
        return cls(settings.open_k, settings.open_n, settings.close_after, settings.close_ratio)

    def applied_to(self, settings: LifecycleSettings) -> LifecycleSettings:
        """``settings`` opening and closing on this debounce where it was recorded."""
        return replace(
            settings,
            open_k=self.open_k,
            open_n=self.open_n,
            close_after=settings.close_after if self.close_after is None else self.close_after,
            close_ratio=settings.close_ratio if self.close_ratio is None else self.close_ratio,
        )

    def __str__(self) -> str:
        close = "" if self.close_after is None else f", closed after {self.close_after} quiet"
        below = "" if self.close_ratio in (None, 1.0) else f" (below {self.close_ratio} x)"
        return f"{self.open_k} of {self.open_n} hot{close}{below}"


class InferenceDebounce(BaseSettings):
    """Inference's event lifecycle as the deployment sets it (``VIGIL_INFERENCE_EVENT_*``): the
    worker's, and read by the processes that must count events as inference raises them (the
    trainer: a one_class fit sets its threshold by events per hour, and replays and footage
    trimming raise events). Set the variables once for every process (compose's shared
    environment does)."""

    model_config = SettingsConfigDict(
        env_prefix="VIGIL_INFERENCE_EVENT_", extra="ignore", frozen=True
    )

    open_k: int = Field(default=3, ge=1, le=100, description="Hot frames that open...")
    open_n: int = Field(default=5, ge=1, le=100, description="...among this many.")
    close_after: int = Field(
        default=5, ge=1, le=1000, description="Consecutive quiet frames that end an event."
    )
    close_ratio: float = Field(
        default=1.0, gt=0, le=1, description="Hysteresis: quiet means below threshold x this."
    )
    update_interval_s: float = Field(
        default=2.0, ge=0, description="At most one update per interval (capture time)."
    )
    max_duration_s: float = Field(
        default=300.0, gt=0, le=86_400, description="An event longer than this is ended."
    )
    silence_s: float = Field(
        default=10.0, gt=0, description="A camera silent this long ends its event."
    )
    follow_model: bool = Field(
        default=True,
        description="A model that records the debounce its threshold was calibrated for opens "
        "and closes its events on it (its expected false alarms per hour hold); false: every "
        "model opens and closes on these settings (a model calibrated otherwise is logged).",
    )

    @model_validator(mode="after")
    def _k_of_n(self) -> InferenceDebounce:
        if self.open_k > self.open_n:
            raise ValueError(f"open_k ({self.open_k}) exceeds open_n ({self.open_n})")
        return self

    def own(self) -> Debounce:
        return Debounce.of(self.lifecycle())

    def for_model(self, metrics: Mapping[str, Any]) -> Debounce | None:
        """The debounce the events of a model with these fit metrics open and close on where
        it is not this one: the one its threshold was calibrated for (``follow_model``); None:
        this one."""
        calibrated = Debounce.calibrated(metrics)
        if not self.follow_model or calibrated is None:
            return None
        own = self.lifecycle()
        return None if calibrated.applied_to(own) == own else calibrated

    def lifecycle_for(self, metrics: Mapping[str, Any]) -> LifecycleSettings:
        """The lifecycle a model with these fit metrics raises its events through: this one,
        on the model's own debounce where ``for_model`` says so."""
        served = self.for_model(metrics)
        own = self.lifecycle()
        return own if served is None else served.applied_to(own)

    def lifecycle(self) -> LifecycleSettings:
        return LifecycleSettings(
            open_k=self.open_k,
            open_n=self.open_n,
            close_after=self.close_after,
            close_ratio=self.close_ratio,
            update_interval_s=self.update_interval_s,
            max_duration_s=self.max_duration_s,
            silence_s=self.silence_s,
        )


@dataclass(frozen=True, eq=False)
class Observation:
    """A scored frame, with what a snapshot of it needs (its JPEG and heatmap)."""

    camera_id: str
    seq: int
    captured_at: datetime
    offset: int
    score: float
    threshold: float
    model: ModelRef
    jpeg: bytes
    heatmap: torch.Tensor | None = None
    label: str | None = None
    context_from: int | None = None
    """Offset of the oldest frame of the camera that this score depends on (its model's
    ``context_frames`` back, set by the worker); None: the frame alone."""
    debounce: Debounce | None = None
    """The debounce its model's threshold was calibrated for; None: the settings'."""

    @property
    def hot(self) -> bool:
        return self.score >= self.threshold


@dataclass(frozen=True)
class Transition:
    """One message to send; ``snapshot`` is the peak frame to store first, when it changed."""

    phase: EventPhase
    event_id: uuid.UUID
    frame: Observation
    started_at: datetime
    ended_at: datetime | None
    peak: Observation
    snapshot: Observation | None

    def message(self, *, detected_at: datetime, snapshot_key: str | None) -> EventMessage:
        return EventMessage(
            message_id=message_id_for(
                event_id=self.event_id, phase=self.phase, frame_seq=self.frame.seq
            ),
            event_id=self.event_id,
            phase=self.phase,
            camera_id=self.frame.camera_id,
            frame_seq=self.frame.seq,
            captured_at=self.frame.captured_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            detected_at=detected_at,
            score=self.frame.score,
            peak_score=self.peak.score,
            peak_frame_seq=self.peak.seq,
            peak_captured_at=self.peak.captured_at,
            threshold=self.frame.threshold,
            model=self.frame.model,
            label=self.peak.label,
            snapshot_key=snapshot_key,
        )


@dataclass
class _OpenEvent:
    event_id: uuid.UUID
    first: Observation
    resume: Observation
    peak: Observation
    last_hot: Observation
    last_message_at: datetime
    sent_peak_seq: int
    quiet: int = 0


@dataclass
class CameraLifecycle:
    settings: LifecycleSettings
    window: deque[Observation] = field(default_factory=deque)
    event: _OpenEvent | None = None
    last: Observation | None = None
    received_at: float = 0.0
    _served: tuple[Debounce, LifecycleSettings] | None = None

    def _settings_for(self, frame: Observation) -> LifecycleSettings:
        """The settings on the frame's model's debounce (one model's frames share one object,
        so it is applied once a model)."""
        debounce = frame.debounce
        if debounce is None:
            return self.settings
        if self._served is None or self._served[0] is not debounce:
            self._served = (debounce, debounce.applied_to(self.settings))
        return self._served[1]

    def observe(self, frame: Observation, *, received_at: float) -> list[Transition]:
        self.received_at = received_at
        out = self._break_if_discontinuous(frame)
        out += self._open(frame) if self.event is None else self._follow(self.event, frame)
        self.last = frame
        return out

    def end(self) -> list[Transition]:
        """End the open event at the last frame seen (silence, model change, shutdown)."""
        self.window.clear()
        event, last = self.event, self.last
        if event is None or last is None:
            return []
        return [self._finish(event, last, ended_at=event.last_hot.captured_at)]

    def resume_frame(self) -> Observation | None:
        """The oldest frame the current state depends on; None: no state to keep."""
        if self.event is not None:
            return self.event.resume
        hot = [f for f in self.window if f.hot]
        return min(hot, key=lambda f: f.offset) if hot else None

    def _break_if_discontinuous(self, frame: Observation) -> list[Transition]:
        last = self.last
        if last is None:
            return []
        gap = (frame.captured_at - last.captured_at).total_seconds()
        restarted = frame.seq <= last.seq
        if gap > self.settings.silence_s or restarted or frame.model != last.model:
            return self.end()
        return []

    def _open(self, frame: Observation) -> list[Transition]:
        # A window holds one model's frames (a model change ends it), so one debounce.
        settings = self._settings_for(frame)
        self.window.append(frame)
        while len(self.window) > settings.open_n:
            self.window.popleft()
        hot = [f for f in self.window if f.hot]
        if len(hot) < settings.open_k:
            return []
        first, peak = hot[0], max(hot, key=lambda f: f.score)
        event = _OpenEvent(
            event_id=event_id_for(
                camera_id=first.camera_id,
                frame_seq=first.seq,
                captured_at=first.captured_at,
                model_id=first.model.id,
            ),
            first=first,
            resume=min(self.window, key=lambda f: f.offset),
            peak=peak,
            last_hot=frame,
            last_message_at=frame.captured_at,
            sent_peak_seq=peak.seq,
        )
        self.window.clear()
        self.event = event
        return [self._transition(EventPhase.START, event, frame, snapshot=peak)]

    def _follow(self, event: _OpenEvent, frame: Observation) -> list[Transition]:
        settings = self._settings_for(frame)
        if frame.score > event.peak.score:
            event.peak = frame
        if frame.score >= frame.threshold * settings.close_ratio:
            event.quiet = 0
            event.last_hot = frame
        else:
            event.quiet += 1
        if event.quiet >= settings.close_after:
            return [self._finish(event, frame, ended_at=event.last_hot.captured_at)]
        age = (frame.captured_at - event.first.captured_at).total_seconds()
        if age >= settings.max_duration_s:
            return [self._finish(event, frame, ended_at=frame.captured_at)]
        since = (frame.captured_at - event.last_message_at).total_seconds()
        if event.peak.seq != event.sent_peak_seq and since >= settings.update_interval_s:
            return [self._update(event, frame)]
        return []

    def _update(self, event: _OpenEvent, frame: Observation) -> Transition:
        snapshot = event.peak
        event.sent_peak_seq = snapshot.seq
        event.last_message_at = frame.captured_at
        return self._transition(EventPhase.UPDATE, event, frame, snapshot=snapshot)

    def _finish(self, event: _OpenEvent, frame: Observation, *, ended_at: datetime) -> Transition:
        changed = event.peak if event.peak.seq != event.sent_peak_seq else None
        self.event = None
        return self._transition(EventPhase.END, event, frame, snapshot=changed, ended_at=ended_at)

    @staticmethod
    def _transition(
        phase: EventPhase,
        event: _OpenEvent,
        frame: Observation,
        *,
        snapshot: Observation | None,
        ended_at: datetime | None = None,
    ) -> Transition:
        return Transition(
            phase=phase,
            event_id=event.event_id,
            frame=frame,
            started_at=event.first.captured_at,
            ended_at=ended_at,
            peak=event.peak,
            snapshot=snapshot,
        )


class EventTracker:
    """The lifecycles of every camera this worker scores; idle cameras' state is dropped."""

    def __init__(self, settings: LifecycleSettings) -> None:
        self.settings = settings
        self._cameras: dict[str, CameraLifecycle] = {}

    def observe(self, frame: Observation, *, received_at: float) -> list[Transition]:
        camera = self._cameras.get(frame.camera_id)
        if camera is None:
            camera = self._cameras[frame.camera_id] = CameraLifecycle(self.settings)
        return camera.observe(frame, received_at=received_at)

    def end(self, camera_id: str) -> list[Transition]:
        camera = self._cameras.pop(camera_id, None)
        return camera.end() if camera else []

    def forget(self, camera_id: str) -> None:
        """Drop a camera's state without a message: another worker took its partition over."""
        self._cameras.pop(camera_id, None)

    def idle(self, *, now: float) -> list[str]:
        """Cameras that sent nothing for ``silence_s`` (by arrival time, so a replayed backlog
        never looks idle)."""
        silence = self.settings.silence_s
        return [c for c, s in self._cameras.items() if now - s.received_at > silence]

    def expire(self, *, now: float) -> list[Transition]:
        """End the events of the ``idle`` cameras and drop their state."""
        return [t for camera_id in self.idle(now=now) for t in self.end(camera_id)]

    def open_events(self) -> int:
        return sum(camera.event is not None for camera in self._cameras.values())

    def resume_frame(self, camera_id: str) -> Observation | None:
        camera = self._cameras.get(camera_id)
        return camera.resume_frame() if camera else None

    def cameras(self) -> list[str]:
        return list(self._cameras)
