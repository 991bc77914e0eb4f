"""Turns source frames into frame messages on Kafka, keyed by camera for per-camera order."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from kafka import KafkaProducer
from PIL import Image

from vigil_shared.schemas.frames import FrameHeaders


def encode_jpeg(image: Image.Image, *, max_size: tuple[int, int], quality: int) -> Image.Image:
    """Cap the resolution (keeping aspect) and convert to a JPEG-able mode; returns the image."""
    if image.width > max_size[0] or image.height > max_size[1]:
        image = image.copy()
        image.thumbnail(max_size, Image.Resampling.BILINEAR)
    return image if image.mode in {"RGB", "L"} else image.convert("RGB")


class FramePublisher:
    """Publishes one camera's frames with increasing sequence numbers."""

    def __init__(
        self,
        producer: KafkaProducer,
        *,
        topic: str,
        camera_id: str,
        max_size: tuple[int, int],
        quality: int,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._camera_id = camera_id
        self._max_size = max_size
        self._quality = quality
        self.seq = 0

    def publish(self, image: Image.Image, captured_at: datetime) -> FrameHeaders:
        image = encode_jpeg(image, max_size=self._max_size, quality=self._quality)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=self._quality)
        headers = FrameHeaders(
            camera_id=self._camera_id,
            seq=self.seq,
            captured_at=captured_at,
            width=image.width,
            height=image.height,
        )
        self._producer.send(
            self._topic,
            key=self._camera_id.encode(),
            value=buffer.getvalue(),
            headers=headers.to_kafka_headers(),
        )
        self.seq += 1
        return headers


def capture_time(start: datetime, offset_s: float) -> datetime:
    return start + timedelta(seconds=offset_s)
