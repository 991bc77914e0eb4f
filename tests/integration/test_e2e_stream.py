"""A Ped2 clip through ingest, Kafka, inference, the event sink, PostgreSQL and the API."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio

from tests.integration.conftest import StartService
from tests.support import read_topic, wait_until
from vigil_shared.schemas.events import EventMessage
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import get_bytes
from vigil_shared.topics import Topics
from vigil_shared.vision.preprocess import decode

pytestmark = [pytest.mark.slow, pytest.mark.dataset]
CLIP = "Test002"  # 180 frames; a cyclist enters at frame 95
WARMUP = 10


def all_events(api: TestClient, camera_id: str, page_size: int) -> list[dict[str, Any]]:
    """Walk the cursor pages of one camera's events."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"camera_id": camera_id, "limit": page_size}
        if cursor:
            params["cursor"] = cursor
        response = api.get("/api/v1/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_ped2_clip_becomes_ordered_events_in_the_api(
    ped2: Path,
    topics: Topics,
    kafka_settings: KafkaSettings,
    settings: CommonSettings,
    s3: Minio,
    api: TestClient,
    start_service: StartService,
) -> None:
    camera = f"ped2-{uuid.uuid4().hex[:8]}"
    labels = ped2 / "labels.json"
    assert labels.is_file()
    sink = start_service("vigil_api.consumers.sink_main", VIGIL_API_SINK_GROUP_ID=f"sink-{camera}")
    inference = start_service(
        "vigil_inference",
        VIGIL_INFERENCE_GROUP_ID=f"inference-{camera}",
        VIGIL_INFERENCE_WARMUP_FRAMES=str(WARMUP),
        # Every scored frame is hot and opens an event that the next frame ends (its maximum
        # duration is shorter than a frame): the counts are exact, whatever the scores.
        VIGIL_INFERENCE_THRESHOLD="0",
        VIGIL_INFERENCE_EVENT_OPEN_K="1",
        VIGIL_INFERENCE_EVENT_OPEN_N="1",
        VIGIL_INFERENCE_EVENT_MAX_DURATION_S="0.001",
    )
    ingest = start_service(
        "vigil_ingest",
        VIGIL_INGEST_CAMERA_ID=camera,
        VIGIL_INGEST_SOURCE=str(ped2 / "test" / f"{CLIP}.mp4"),
        VIGIL_INGEST_FPS="10",
        VIGIL_INGEST_REALTIME="false",
    )
    assert ingest.process.wait(timeout=120) == 0, ingest.log()[-3000:]

    expected = (180 - WARMUP) // 2

    def stored() -> list[dict[str, Any]] | None:
        sink.assert_running()
        inference.assert_running()
        events = all_events(api, camera, page_size=50)
        return events if len(events) >= expected else None

    events = wait_until(stored, timeout_s=240, what=f"{expected} events of {camera} in the API")
    assert len(events) == expected
    events.sort(key=lambda e: e["frame_seq"])  # the API pages newest first
    starts = range(WARMUP, 180, 2)
    assert all(e["frame_seq"] in (s, s + 1) for e, s in zip(events, starts, strict=True))
    assert {e["camera_id"] for e in events} == {camera}
    times = [e["captured_at"] for e in events]
    assert all(a < b for a, b in itertools.pairwise(times)), "capture times must increase"
    assert all(e["model_kind"] == "warmup" and e["score"] >= 0 for e in events)

    # Downstream consumers see the lifecycle on the topic: one start and one end per event.
    records = read_topic(kafka_settings, topics.events, count=2 * expected)
    wire = [EventMessage.model_validate_json(r.value) for r in records]
    assert {str(m.event_id) for m in wire} == {e["event_id"] for e in events}
    assert sorted((m.frame_seq, m.phase.value) for m in wire) == [
        (seq, "start" if (seq - WARMUP) % 2 == 0 else "end") for seq in range(WARMUP, 180)
    ]
    assert len({m.message_id for m in wire}) == len(wire)
    assert all(r.key == camera.encode() for r in records)

    # Each event's peak frame is in S3, raw and overlaid, under the key its messages name.
    key = wire[0].snapshot_key
    assert key is not None
    overlay = decode(get_bytes(s3, settings.s3.snapshots_bucket, key))
    raw = decode(get_bytes(s3, settings.s3.snapshots_bucket, key.replace("overlay", "frame")))
    assert overlay.shape == raw.shape and overlay.shape[0] == 3

    assert inference.stop() == 0
    assert sink.stop() == 0
