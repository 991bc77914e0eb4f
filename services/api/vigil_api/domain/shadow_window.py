"""A span of one camera's shadow scores, folded as they arrive: agreement with production,
score drift and the events the shadow model would have raised, through the same event lifecycle
(``vigil_shared.event_lifecycle``) as the events production raised. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from vigil_shared.event_lifecycle import CameraLifecycle, LifecycleSettings, Observation, Transition
from vigil_shared.schemas.events import EventPhase
from vigil_shared.schemas.shadow_scores import ShadowScore


@dataclass(frozen=True)
class WindowKey:
    camera_id: str
    shadow_model_id: str
    production_model_id: str


@dataclass
class WouldBeEvent:
    """An event the shadow model would have raised: its capture-time span and peak."""

    started_at: datetime
    ended_at: datetime | None
    peak_score: float

    def overlaps(self, start: datetime, end: datetime | None) -> bool:
        mine_end = self.ended_at or self.started_at
        return self.started_at <= (end or start) and start <= mine_end


@dataclass
class ShadowWindow:
    """One camera's frames scored by one shadow model next to one production model, from the
    frame at ``first_offset`` of ``partition``."""

    key: WindowKey
    partition: int
    first_offset: int
    window_from: datetime
    lifecycle: CameraLifecycle
    last_offset: int = -1
    window_to: datetime | None = None
    frames: int = 0
    agreed: int = 0
    shadow_hot: int = 0
    production_hot: int = 0
    drift_sum: float = 0.0
    events: list[WouldBeEvent] = field(default_factory=list)

    @classmethod
    def starting(
        cls, score: ShadowScore, partition: int, settings: LifecycleSettings
    ) -> ShadowWindow:
        key = WindowKey(score.camera_id, score.shadow.id, score.production.id)
        return cls(key, partition, score.frame_offset, score.captured_at, CameraLifecycle(settings))

    def add(self, score: ShadowScore) -> None:
        """Fold one frame in; a frame at or before the last one (a replay) is skipped."""
        if score.frame_offset <= self.last_offset:
            return
        self.last_offset = score.frame_offset
        self.window_to = score.captured_at
        self.frames += 1
        self.agreed += score.shadow_hot == score.production_hot
        self.shadow_hot += score.shadow_hot
        self.production_hot += score.production_hot
        self.drift_sum += _relative(score.shadow_score, score.shadow_threshold) - _relative(
            score.production_score, score.production_threshold
        )
        self._follow(self.lifecycle.observe(_observation(score), received_at=0.0))

    def full(self, *, span_frames: int, span_s: float | None) -> bool:
        if self.frames >= span_frames:
            return True
        if span_s is None or self.window_to is None:
            return False
        return (self.window_to - self.window_from).total_seconds() >= span_s

    def close(self) -> None:
        """End an event still open at the span's end (it counts, ended at its last frame)."""
        self._follow(self.lifecycle.end())

    @property
    def agreement(self) -> float:
        return self.agreed / self.frames if self.frames else 1.0

    @property
    def score_drift(self) -> float:
        """Mean of (shadow score / its threshold) - (production score / its threshold)."""
        return self.drift_sum / self.frames if self.frames else 0.0

    def _follow(self, transitions: list[Transition]) -> None:
        for transition in transitions:
            if transition.phase is EventPhase.START:
                self.events.append(WouldBeEvent(transition.started_at, None, transition.peak.score))
            elif self.events:
                self.events[-1].ended_at = transition.ended_at
                self.events[-1].peak_score = transition.peak.score


def _relative(score: float, threshold: float) -> float:
    return score / max(threshold, 1e-9)


def _observation(score: ShadowScore) -> Observation:
    return Observation(
        camera_id=score.camera_id,
        seq=score.frame_seq,
        captured_at=score.captured_at,
        offset=score.frame_offset,
        score=score.shadow_score,
        threshold=score.shadow_threshold,
        model=score.shadow,
        jpeg=b"",
    )
