"""One camera: a capture thread and a publish thread joined by a small bounded buffer.

The capture thread never touches Kafka and the publish thread never touches the source, so a
slow broker costs the camera its oldest frames rather than a stalled decoder, and a dead camera
costs nothing but its status reports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from kafka import KafkaProducer

from vigil_ingest.backoff import Backoff
from vigil_ingest.buffer import FrameBuffer
from vigil_ingest.capture import POLL_S, CaptureLoop, Finish, OpenFrames, open_frames
from vigil_ingest.masks import MaskSet
from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.motion import MotionGate
from vigil_ingest.publisher import CapturedFrame, FramePublisher, send_status
from vigil_ingest.push import PushCapture, PushRoutes
from vigil_ingest.settings import IngestSettings
from vigil_ingest.shaping import FrameShaper
from vigil_ingest.sources import SourceError, kind_of, push_token_sha256
from vigil_ingest.status import CameraTracker
from vigil_shared.cameras.sources import SourceKind, redact
from vigil_shared.logging import bind
from vigil_shared.schemas.camera_status import CameraStatus

log = logging.getLogger(__name__)
Report = Callable[[CameraStatus], None]


class Capture(Protocol):
    """The side of a camera that fills its buffer: a source reader, or a push receiver."""

    def run(self, halt: threading.Event) -> Finish | None: ...


class PublishLoop:
    """Moves frames from the buffer to Kafka and publishes the camera's status when it is due."""

    def __init__(
        self,
        *,
        buffer: FrameBuffer[CapturedFrame],
        publisher: FramePublisher,
        tracker: CameraTracker,
        report: Report,
        max_frames: int | None = None,
    ) -> None:
        self._buffer = buffer
        self._publisher = publisher
        self._tracker = tracker
        self._report = report
        self._max_frames = max_frames

    def run(self, halt: threading.Event) -> Finish | None:
        """Until the buffer is drained after the source ended, or ``halt``; a reason to stop the
        camera when the loop decided it (``max_frames`` reached)."""
        while not halt.is_set():
            if self._tracker.report_due():
                self._report(self._tracker.report())
            # While Kafka is behind, do not take frames: the buffer drops the oldest meanwhile.
            if not self._publisher.wait_for_room(timeout=POLL_S):
                continue
            frame = self._buffer.get(timeout=POLL_S)
            self._tracker.buffered(len(self._buffer))
            if frame is None:
                if self._buffer.drained:
                    return None
                continue
            self._publisher.publish(frame)
            if self._max_frames is not None and self._publisher.seq >= self._max_frames:
                halt.set()
                return Finish(f"published max_frames={self._max_frames}")
        return None


class CameraPipeline:
    """Runs one camera's capture and publish loops on their own threads until they end or
    ``stop()``; ``close()`` then publishes the camera's final status."""

    def __init__(
        self,
        *,
        camera_id: str,
        capture: Capture,
        publish: PublishLoop,
        buffer: FrameBuffer[CapturedFrame],
        publisher: FramePublisher,
        tracker: CameraTracker,
        report: Report,
        push_routes: PushRoutes | None = None,
    ) -> None:
        self.camera_id = camera_id
        self._push_routes = push_routes
        self.halt = threading.Event()
        self._capture = capture
        self._publish = publish
        self._buffer = buffer
        self._publisher = publisher
        self._tracker = tracker
        self._report = report
        self._finishes: list[Finish] = []
        self._threads = [
            threading.Thread(target=self._run_capture, name=f"capture-{camera_id}", daemon=True),
            threading.Thread(target=self._run_publish, name=f"publish-{camera_id}", daemon=True),
        ]

    @property
    def published(self) -> int:
        return self._publisher.seq

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        if self._push_routes is not None and isinstance(self._capture, PushCapture):
            self._push_routes.add(self.camera_id, self._capture)

    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def warn(self, warning: str | None) -> None:
        """Shown in the camera's status reason until cleared (see ``CameraTracker.warn``)."""
        self._tracker.warn(warning)

    def stop(self) -> None:
        self.halt.set()

    def close(self, *, timeout_s: float, reason: str = "ingest stopped") -> Finish:
        """Stop both loops (waiting ``timeout_s`` at most for each), count the frames left in the
        buffer as dropped, wait for Kafka's last acknowledgements, and report ``stopped`` with
        the loops' own reason if they ended by themselves, else ``reason``."""
        if self._push_routes is not None and isinstance(self._capture, PushCapture):
            self._push_routes.remove(self.camera_id, self._capture)
        self.halt.set()
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                # A daemon thread blocked in FFmpeg or Kafka beyond its own bound; do not hang.
                log.warning("thread did not stop in time", extra={"thread": thread.name})
        left = self._buffer.clear()
        if left:
            self._tracker.dropped("shutdown", left)
        self._publisher.wait_until_acked(timeout=timeout_s)
        finish = self._finishes[0] if self._finishes else Finish(reason)
        self._tracker.stopped(finish.reason)
        self._report(self._tracker.report())
        return finish

    def _run_capture(self) -> None:
        with bind(camera_id=self.camera_id):
            try:
                finish = self._capture.run(self.halt)
                if finish is not None:
                    self._finishes.append(finish)
            except Exception:
                self._crashed("capture")
            finally:
                self._buffer.close()

    def _run_publish(self) -> None:
        with bind(camera_id=self.camera_id):
            try:
                finish = self._publish.run(self.halt)
                if finish is not None:
                    self._finishes.append(finish)
            except Exception:
                self._crashed("publish")

    def _crashed(self, loop: str) -> None:
        # A bug, not a camera fault: stop this camera and let the process exit non-zero, so its
        # supervisor restarts it, rather than keep a half-dead camera running.
        log.exception("%s loop crashed", loop)
        self._finishes.insert(0, Finish(f"ingest failed in its {loop} loop", failed=True))
        self.halt.set()


def build_camera(
    settings: IngestSettings,
    *,
    producer: KafkaProducer,
    metrics: IngestMetrics,
    frames: OpenFrames | None = None,
    push_routes: PushRoutes | None = None,
) -> CameraPipeline:
    """Wire one camera from settings; the producer and metrics are the process's, shared.
    ``frames`` replaces the source the settings name (tests script a camera with it). A push
    camera needs ``push_routes``, where it is reachable while it runs."""
    topics = settings.common.kafka.topics
    tracker = CameraTracker(
        camera_id=settings.camera_id,
        target_fps=settings.fps,
        report_interval_s=settings.status_interval_s,
        metrics=metrics,
        first_reason=f"opening {redact(settings.source)}",
    )
    buffer: FrameBuffer[CapturedFrame] = FrameBuffer(settings.buffer_frames)
    publisher = FramePublisher(
        producer,
        topic=topics.frames,
        camera_id=settings.camera_id,
        quality=settings.jpeg_quality,
        max_in_flight=settings.max_in_flight,
        tracker=tracker,
    )

    def report(status: CameraStatus) -> None:
        send_status(producer, topics.camera_status, status)

    capture = _capture(
        settings, buffer=buffer, tracker=tracker, frames=frames, push=push_routes is not None
    )
    publish = PublishLoop(
        buffer=buffer,
        publisher=publisher,
        tracker=tracker,
        report=report,
        max_frames=settings.max_frames,
    )
    return CameraPipeline(
        camera_id=settings.camera_id,
        capture=capture,
        publish=publish,
        buffer=buffer,
        publisher=publisher,
        tracker=tracker,
        report=report,
        push_routes=push_routes,
    )


def _capture(
    settings: IngestSettings,
    *,
    buffer: FrameBuffer[CapturedFrame],
    tracker: CameraTracker,
    frames: OpenFrames | None,
    push: bool,
) -> Capture:
    shaper = FrameShaper(
        masks=MaskSet(settings.masks),
        max_size=(settings.max_width, settings.max_height),
        gate=MotionGate(settings.motion_threshold) if settings.motion_threshold else None,
    )
    if frames is None and kind_of(settings.source) is SourceKind.PUSH:
        if not push:
            raise SourceError(
                f"camera {settings.camera_id} is a push camera but no push endpoint runs; "
                "set VIGIL_INGEST_PUSH_PORT"
            )
        return PushCapture(
            token_sha256=push_token_sha256(settings.source),
            buffer=buffer,
            tracker=tracker,
            shaper=shaper,
            timeout_s=settings.push_timeout_s,
        )
    return CaptureLoop(
        source=settings.source,
        open_frames=frames or open_frames(settings),
        buffer=buffer,
        tracker=tracker,
        backoff=Backoff(
            initial_s=settings.reconnect_initial_s,
            max_s=settings.reconnect_max_s,
            jitter=settings.reconnect_jitter,
        ),
        shaper=shaper,
        realtime=settings.realtime,
    )
