"""Test data: frame messages and JPEGs made on the spot."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from kafka import KafkaProducer
from PIL import Image, ImageDraw

from vigil_shared.schemas.frames import FrameHeaders

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)


def scene_jpeg(step: int, *, size: tuple[int, int] = (180, 120)) -> bytes:
    """A grey walkway with a small figure that moves one step to the right per frame."""
    image = Image.new("L", size, 110)
    draw = ImageDraw.Draw(image)
    x = 10 + 4 * step
    draw.rectangle((x, 50, x + 8, 80), fill=40)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def send_frame(
    producer: KafkaProducer,
    topic: str,
    *,
    camera_id: str,
    seq: int,
    payload: bytes,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    meta = FrameHeaders(
        camera_id=camera_id,
        seq=seq,
        captured_at=T0 + timedelta(seconds=seq / 10),
        width=180,
        height=120,
    )
    producer.send(
        topic,
        key=camera_id.encode(),
        value=payload,
        headers=meta.to_kafka_headers() if headers is None else headers,
    )
