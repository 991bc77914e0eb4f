"""Stand-ins for ingest's unit tests: a Kafka as slow as a test needs, and scripted cameras."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw

from tests.support import wait_until
from vigil_ingest.camera import CameraPipeline
from vigil_ingest.capture import Finish
from vigil_ingest.settings import IngestSettings
from vigil_ingest.sources import SourceError, SourceFrame
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.frames import FrameHeaders

STREAM = "rtsp://127.0.0.1:1/cam"
TOPICS = IngestSettings().common.kafka.topics


def camera_settings(**overrides: object) -> IngestSettings:
    """Camera ``cam-1`` on a stream, with reconnect delays short enough for a unit test."""
    values: dict[str, object] = {
        "camera_id": "cam-1",
        "source": STREAM,
        "fps": 10,
        "status_interval_s": 60,
        "reconnect_initial_s": 0.01,
        "reconnect_max_s": 0.05,
    }
    values.update(overrides)
    return IngestSettings.model_validate(values)


def run_to_end(camera: CameraPipeline, *, timeout_s: float = 10) -> Finish:
    """Start a camera whose source ends, wait for it, and close it."""
    camera.start()
    wait_until(camera.done, timeout_s=timeout_s, what="the camera's source to end")
    return camera.close(timeout_s=5)


class FakeFuture:
    """kafka-python's send future: callbacks run when it resolves, at once if it already has."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Any], None]] = []
        self._errbacks: list[Callable[[Exception], None]] = []
        self._outcome: tuple[bool, Any] | None = None

    def add_callback(self, f: Callable[[Any], None]) -> FakeFuture:
        if self._outcome is None:
            self._callbacks.append(f)
        elif self._outcome[0]:
            f(self._outcome[1])
        return self

    def add_errback(self, f: Callable[[Exception], None]) -> FakeFuture:
        if self._outcome is None:
            self._errbacks.append(f)
        elif not self._outcome[0]:
            f(self._outcome[1])
        return self

    def succeed(self) -> None:
        self._outcome = (True, None)
        for f in self._callbacks:
            f(None)

    def fail(self, error: Exception) -> None:
        self._outcome = (False, error)
        for f in self._errbacks:
            f(error)


@dataclass
class Sent:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class FakeProducer:
    """Records sends; acknowledges each at once, or only on ``ack_all()`` when ``slow``."""

    slow: bool = False
    sent: list[Sent] = field(default_factory=list)
    _pending: list[FakeFuture] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(
        self,
        topic: str,
        *,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> FakeFuture:
        future = FakeFuture()
        with self._lock:
            self.sent.append(Sent(topic, key, value, headers or []))
            if self.slow:
                self._pending.append(future)
        if not self.slow:
            future.succeed()
        return future

    def ack_all(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.succeed()
        return len(pending)

    def frames(self, topic: str) -> list[FrameHeaders]:
        with self._lock:
            records = [s for s in self.sent if s.topic == topic]
        return [FrameHeaders.from_kafka_headers(r.headers) for r in records]

    def statuses(self, topic: str) -> list[CameraStatus]:
        with self._lock:
            records = [s for s in self.sent if s.topic == topic]
        return [CameraStatus.model_validate_json(r.value) for r in records]


def numbered_image(index: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """A frame whose content differs clearly from the next (a bar moving right)."""
    image = Image.new("RGB", size, (90, 90, 90))
    x = (index * 7) % size[0]
    ImageDraw.Draw(image).rectangle((x, 0, x + 6, size[1]), fill=(250, 250, 250))
    return image


def frames(count: int, *, fps: float = 10.0) -> Iterator[SourceFrame]:
    for index in range(count):
        yield SourceFrame(image=numbered_image(index), offset_s=index / fps)


def scripted(
    *plans: int | str, hold: threading.Event | None = None
) -> Callable[[], Generator[SourceFrame, None, None]]:
    """A camera that follows one plan per (re)open: a number of frames, or a failure message.

    After the frames of the last plan it stays silent until ``hold`` is set (a live camera that
    is still connected), or ends (a file) when no ``hold`` is given.
    """
    remaining = list(plans)

    def open_frames() -> Generator[SourceFrame, None, None]:
        plan = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(plan, str):
            raise SourceError(plan)
        yield from frames(plan)
        if hold is not None and not remaining[1:]:
            hold.wait()

    return open_frames
