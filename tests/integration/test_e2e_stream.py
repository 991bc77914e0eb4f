"""A Ped2 clip through ingest, Kafka, inference, the event sink, PostgreSQL and the API."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.conftest import StartService
from tests.support import read_topic, wait_until
from vigil_shared.schemas.events import AnomalyEvent
from vigil_shared.settings import KafkaSettings
from vigil_shared.topics import Topics

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
    api: TestClient,
    start_service: StartService,
) -> None:
    camera = f"ped2-{uuid.uuid4().hex[:8]}"
    labels = ped2 / "labels.json"
    assert labels.is_file()
    sink = start_service("vigil_api.sink_main", VIGIL_API_SINK_GROUP_ID=f"sink-{camera}")
    inference = start_service(
        "vigil_inference",
        VIGIL_INFERENCE_GROUP_ID=f"inference-{camera}",
        VIGIL_INFERENCE_WARMUP_FRAMES=str(WARMUP),
        VIGIL_INFERENCE_THRESHOLD="0",  # every scored frame is an event: the count is exact
    )
    ingest = start_service(
        "vigil_ingest",
        VIGIL_INGEST_CAMERA_ID=camera,
        VIGIL_INGEST_SOURCE=str(ped2 / "test" / f"{CLIP}.mp4"),
        VIGIL_INGEST_FPS="10",
        VIGIL_INGEST_REALTIME="false",
    )
    assert ingest.process.wait(timeout=120) == 0, ingest.log()[-3000:]

    expected = 180 - WARMUP

    def stored() -> list[dict[str, Any]] | None:
        sink.assert_running()
        inference.assert_running()
        events = all_events(api, camera, page_size=50)
        return events if len(events) >= expected else None

    events = wait_until(stored, timeout_s=240, what=f"{expected} events of {camera} in the API")
    assert len(events) == expected
    assert [e["frame_seq"] for e in events] == list(range(WARMUP, 180))
    assert {e["camera_id"] for e in events} == {camera}
    assert len({e["event_id"] for e in events}) == expected
    times = [e["captured_at"] for e in events]
    assert all(a < b for a, b in itertools.pairwise(times)), "capture times must increase"
    assert all(e["model_kind"] == "warmup" and e["score"] >= 0 for e in events)

    # What downstream consumers see on the topic is the published schema, keyed by camera.
    records = read_topic(kafka_settings, topics.events, count=expected)
    wire = [AnomalyEvent.model_validate_json(r.value) for r in records]
    assert {str(e.event_id) for e in wire} == {e["event_id"] for e in events}
    assert all(r.key == camera.encode() for r in records)

    assert inference.stop() == 0
    assert sink.stop() == 0
