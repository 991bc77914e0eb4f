"""Turns a camera's frames into frame messages on Kafka, keyed by camera for per-camera order."""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from PIL import Image

from vigil_ingest.status import CameraTracker
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.frames import FrameHeaders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CapturedFrame:
    image: Image.Image  # resolution already capped
    captured_at: datetime


def cap_resolution(image: Image.Image, *, max_size: tuple[int, int]) -> Image.Image:
    """Shrink to fit ``max_size`` (keeping aspect) and convert to a mode JPEG can hold."""
    if image.width > max_size[0] or image.height > max_size[1]:
        image = image.copy()
        image.thumbnail(max_size, Image.Resampling.BILINEAR)
    return image if image.mode in {"RGB", "L"} else image.convert("RGB")


def to_jpeg(image: Image.Image, *, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class FramePublisher:
    """Publishes one camera's frames in order; sequence numbers rise by one per frame sent.

    At most ``max_in_flight`` frames wait for Kafka's acknowledgement. kafka-python 3 has no
    ``buffer_memory`` limit, so without this bound a slow broker would grow the producer's queue
    without end; at the bound ``wait_for_room`` says no, and the camera's buffer drops its oldest
    frames meanwhile. ``acks=all`` and one request in flight keep retries from reordering frames.
    """

    def __init__(
        self,
        producer: KafkaProducer,
        *,
        topic: str,
        camera_id: str,
        quality: int,
        max_in_flight: int,
        tracker: CameraTracker,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._camera_id = camera_id
        self._quality = quality
        self._max_in_flight = max_in_flight
        self._tracker = tracker
        self._in_flight = 0
        self._acked = threading.Condition()
        self.seq = 0

    def wait_for_room(self, *, timeout: float) -> bool:
        with self._acked:
            return self._acked.wait_for(lambda: self._in_flight < self._max_in_flight, timeout)

    def wait_until_acked(self, *, timeout: float) -> bool:
        with self._acked:
            return self._acked.wait_for(lambda: self._in_flight == 0, timeout)

    def publish(self, frame: CapturedFrame) -> FrameHeaders | None:
        """Send one frame; None when Kafka gave no metadata within ``max_block_ms`` (dropped)."""
        headers = FrameHeaders(
            camera_id=self._camera_id,
            seq=self.seq,
            captured_at=frame.captured_at,
            width=frame.image.width,
            height=frame.image.height,
        )
        payload = to_jpeg(frame.image, quality=self._quality)
        try:
            future = self._producer.send(
                self._topic,
                key=self._camera_id.encode(),
                value=payload,
                headers=headers.to_kafka_headers(),
            )
        except KafkaTimeoutError as exc:
            self._tracker.dropped("kafka")
            log.warning("frame dropped: Kafka did not answer in time", extra={"error": str(exc)})
            return None
        with self._acked:
            self._in_flight += 1
        future.add_callback(self._on_ack).add_errback(self._on_error)
        self.seq += 1
        return headers

    def _release(self) -> None:
        with self._acked:
            self._in_flight -= 1
            self._acked.notify_all()

    def _on_ack(self, _metadata: object) -> None:
        self._release()
        self._tracker.published()

    def _on_error(self, error: Exception) -> None:
        # The frame had its sequence number: consumers see a gap, the count says why.
        self._release()
        self._tracker.dropped("kafka")
        log.warning("frame not delivered", extra={"error": str(error)})


def send_status(producer: KafkaProducer, topic: str, status: CameraStatus) -> None:
    """Publish a camera status; a lost report is logged, and the next one replaces it."""
    try:
        future = producer.send(topic, key=status.camera_id.encode(), value=status.to_json_bytes())
    except KafkaTimeoutError as exc:
        log.warning("camera status not sent: Kafka did not answer", extra={"error": str(exc)})
        return
    future.add_errback(
        lambda error: log.warning("camera status not delivered", extra={"error": str(error)})
    )
