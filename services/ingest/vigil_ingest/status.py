"""The live state and counters of one camera, shared by its capture and publish threads."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from vigil_ingest.metrics import IngestMetrics
from vigil_shared.schemas.camera_status import CameraState, CameraStatus
from vigil_shared.schemas.frames import utc_now

log = logging.getLogger(__name__)
REASON_MAX = 1000  # CameraStatus.reason's limit


class CameraTracker:
    """Counts what happens to a camera's frames and knows whether the camera is online.

    The capture thread reports state changes, the publish thread and Kafka's callbacks count
    frames; the publish thread turns it all into ``CameraStatus`` reports. Every count also moves
    the camera's Prometheus series, so /metrics and the status topic never disagree.
    """

    def __init__(
        self,
        *,
        camera_id: str,
        target_fps: float,
        report_interval_s: float,
        metrics: IngestMetrics,
        first_reason: str = "starting",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.camera_id = camera_id
        self._target_fps = target_fps
        self._interval_s = report_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state: CameraState = "offline"
        self._reason: str | None = first_reason[:REASON_MAX]
        self._warning: str | None = None
        self._since = clock()
        self._changed = True
        self._last_frame_at: datetime | None = None
        self._published = self._dropped = self._gated = self._reconnects = 0
        self._reported_published = 0
        self._reported_at_mono = time.monotonic()
        self._metrics = metrics
        self._online = metrics.online.labels(camera_id)
        self._online.set(0)

    def _enter(self, state: CameraState, reason: str | None) -> None:
        with self._lock:
            if (state, reason) == (self._state, self._reason):
                return
            if state != self._state:
                self._since = self._clock()
            self._state, self._reason, self._changed = state, reason, True
        self._online.set(1 if state == "online" else 0)
        level = logging.WARNING if state == "offline" else logging.INFO
        log.log(level, "camera %s", state, extra={"state": state, "reason": reason})

    def online(self) -> None:
        self._enter("online", None)

    def offline(self, reason: str) -> None:
        self._enter("offline", reason[:REASON_MAX])

    def stopped(self, reason: str) -> None:
        self._enter("stopped", reason[:REASON_MAX])

    def warn(self, warning: str | None) -> None:
        """A problem of ingest's that is not the camera's state (the API refused ingest's key):
        shown in ``reason`` whatever the state, and reported at once, until cleared (None)."""
        with self._lock:
            if warning == self._warning:
                return
            self._warning, self._changed = warning, True

    @property
    def state(self) -> CameraState:
        with self._lock:
            return self._state

    def frame_read(self, captured_at: datetime) -> None:
        with self._lock:
            self._last_frame_at = captured_at

    def published(self) -> None:
        with self._lock:
            self._published += 1
        self._metrics.published.labels(self.camera_id).inc()

    def dropped(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._dropped += count
        self._metrics.dropped.labels(self.camera_id, reason).inc(count)

    def gated(self) -> None:
        with self._lock:
            self._gated += 1
        self._metrics.gated.labels(self.camera_id).inc()

    def reconnecting(self) -> None:
        with self._lock:
            self._reconnects += 1
        self._metrics.reconnects.labels(self.camera_id).inc()

    def buffered(self, frames: int) -> None:
        self._metrics.buffered.labels(self.camera_id).set(frames)

    def report_due(self) -> bool:
        with self._lock:
            elapsed = time.monotonic() - self._reported_at_mono
            return self._changed or elapsed >= self._interval_s

    def report(self) -> CameraStatus:
        """The status now; ``fps`` covers the time since the previous report."""
        with self._lock:
            now_mono = time.monotonic()
            elapsed = max(now_mono - self._reported_at_mono, 1e-3)
            fps = (self._published - self._reported_published) / elapsed
            self._reported_published, self._reported_at_mono = self._published, now_mono
            self._changed = False
            status = CameraStatus(
                camera_id=self.camera_id,
                state=self._state,
                reason="; ".join(r for r in (self._reason, self._warning) if r)[:REASON_MAX]
                or None,
                since=self._since,
                reported_at=self._clock(),
                report_interval_s=self._interval_s,
                last_frame_at=self._last_frame_at,
                fps=round(fps, 3),
                target_fps=self._target_fps,
                frames_published=self._published,
                frames_dropped=self._dropped,
                frames_gated=self._gated,
                reconnects=self._reconnects,
            )
        self._metrics.fps.labels(self.camera_id).set(status.fps)
        return status
