"""The push endpoint: a camera's uploads are published like any frame; anything else is refused
with a reason and publishes nothing."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.support import wait_until
from tests.unit.ingest_fakes import TOPICS, FakeProducer, camera_settings, numbered_image
from vigil_ingest.camera import CameraPipeline, build_camera
from vigil_ingest.metrics import IngestMetrics
from vigil_ingest.push import PushRoutes
from vigil_ingest.push_server import create_push_app

TOKEN = "s3cret-token-of-cam-1"
SOURCE = "push://?token_sha256=" + hashlib.sha256(TOKEN.encode()).hexdigest()
MAX_BYTES = 64 * 1024


def encoded(image: Image.Image, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@dataclass
class PushRig:
    client: TestClient
    producer: FakeProducer
    camera: CameraPipeline
    metrics: IngestMetrics

    def push(
        self, body: bytes, *, token: str = TOKEN, media: str = "image/jpeg", camera: str = "cam-1"
    ) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": media}
        response = self.client.post(f"/push/{camera}", content=body, headers=headers)
        return response.status_code, response.text

    def frames(self) -> list[bytes]:
        return [s.value for s in self.producer.sent if s.topic == TOPICS.frames]


def rig(**overrides: object) -> Iterator[PushRig]:
    producer = FakeProducer(slow=bool(overrides.pop("slow", False)))
    metrics, routes = IngestMetrics(), PushRoutes()
    settings = camera_settings(source=SOURCE, max_width=64, max_height=48, **overrides)
    camera = build_camera(settings, producer=producer, metrics=metrics, push_routes=routes)
    camera.start()
    app = create_push_app(routes=routes, max_bytes=MAX_BYTES, metrics=metrics)
    with TestClient(app) as client:
        yield PushRig(client, producer, camera, metrics)
    camera.close(timeout_s=5)


@pytest.fixture
def push() -> Iterator[PushRig]:
    yield from rig()


def test_an_upload_is_capped_and_published_with_the_frame_headers(push: PushRig) -> None:
    code, text = push.push(encoded(numbered_image(0, size=(320, 240))))
    assert code == 202, text
    code, _ = push.push(encoded(numbered_image(5, size=(320, 240)), "PNG"), media="image/png")
    assert code == 202
    wait_until(
        lambda: len(push.frames()) == 2, timeout_s=5, what="two pushed frames on the frames topic"
    )
    headers = push.producer.frames(TOPICS.frames)
    assert [h.seq for h in headers] == [0, 1]
    assert all(h.camera_id == "cam-1" and (h.width, h.height) == (64, 48) for h in headers)
    assert headers[0].captured_at < headers[1].captured_at
    assert all(s.key == b"cam-1" for s in push.producer.sent if s.topic == TOPICS.frames)
    wait_until(lambda: push.camera.published == 2, timeout_s=5, what="acknowledgements")


def test_the_camera_goes_online_with_its_first_upload(push: PushRig) -> None:
    push.push(encoded(numbered_image(0)))
    # The status reports the camera's state when the publish thread next looks: closing at once
    # could go from online to stopped before it reports online.
    wait_until(
        lambda: any(s.state == "online" for s in push.producer.statuses(TOPICS.camera_status)),
        timeout_s=5,
        what="an online status",
    )
    push.camera.close(timeout_s=5)
    statuses = push.producer.statuses(TOPICS.camera_status)
    assert statuses[0].state == "offline" and statuses[0].reason == "waiting for the first upload"
    assert statuses[-1].state == "stopped" and statuses[-1].frames_published == 1


@pytest.mark.parametrize(("token", "camera"), [("wrong", "cam-1"), ("", "cam-1"), (TOKEN, "cam-2")])
def test_a_wrong_token_or_camera_is_401_and_publishes_nothing(
    push: PushRig, token: str, camera: str
) -> None:
    code, text = push.push(encoded(numbered_image(0)), token=token, camera=camera)
    assert code == 401 and "Authorization: Bearer" in text
    assert TOKEN not in text and not push.frames()


@pytest.mark.parametrize(
    "body",
    [b"not a picture at all", encoded(numbered_image(0))[:300], encoded(numbered_image(0), "PNG")],
    ids=["garbage", "truncated", "png-sent-as-jpeg"],
)
def test_a_body_that_does_not_decode_is_400_and_publishes_nothing(
    push: PushRig, body: bytes
) -> None:
    code, text = push.push(body)
    assert code == 400 and "not a readable JPEG picture" in text
    assert not push.frames()


def test_a_body_that_is_not_declared_a_picture_is_415(push: PushRig) -> None:
    code, text = push.push(encoded(numbered_image(0)), media="application/octet-stream")
    assert code == 415 and "image/jpeg or image/png" in text


def test_an_oversized_upload_is_413_and_publishes_nothing(push: PushRig) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    body = encoded(Image.fromarray(noise), "PNG")
    assert len(body) > MAX_BYTES
    code, text = push.push(body, media="image/png")
    assert code == 413 and "VIGIL_INGEST_PUSH_MAX_BYTES" in text
    assert not push.frames()


@pytest.fixture
def slow_push() -> Iterator[PushRig]:
    """A camera buffering one frame, with one in flight to a Kafka that acknowledges on demand."""
    yield from rig(slow=True, buffer_frames=1, max_in_flight=1)


def test_a_full_buffer_answers_429_until_kafka_catches_up(slow_push: PushRig) -> None:
    assert slow_push.push(encoded(numbered_image(0)))[0] == 202
    wait_until(slow_push.frames, timeout_s=5, what="the first frame sent (not acknowledged)")
    # One frame in flight, unacknowledged, so the publisher waits; one fits in the buffer.
    assert slow_push.push(encoded(numbered_image(1)))[0] == 202
    code, text = slow_push.push(encoded(numbered_image(2)))
    assert code == 429 and "retry" in text
    slow_push.producer.ack_all()
    wait_until(
        lambda: slow_push.push(encoded(numbered_image(9)))[0] == 202,
        timeout_s=5,
        what="room in the buffer after Kafka acknowledged",
    )
    busy = slow_push.metrics.registry.get_sample_value(
        "vigil_ingest_push_requests_total", {"outcome": "busy"}
    )
    assert busy is not None and busy >= 1
    slow_push.producer.ack_all()


def test_a_stopped_camera_takes_no_more_uploads(push: PushRig) -> None:
    push.camera.close(timeout_s=5)
    assert push.push(encoded(numbered_image(0)))[0] == 401
