"""One camera's footage becomes several groups; versions compose into one, by content."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_rows, make_event, scene_jpeg
from tests.integration.conftest import ADMIN_KEY, IssueKey, bearer
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import put_bytes
from vigil_shared.topics import Topics


@pytest.fixture
def client(topics: Topics) -> Iterator[TestClient]:
    with TestClient(create_app(ApiSettings()), headers=bearer(ADMIN_KEY)) as api:
        yield api


def send_frames(kafka: KafkaSettings, camera_id: str, offsets_s: list[int]) -> datetime:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    producer = make_producer(kafka)
    for seq, offset in enumerate(offsets_s):
        captured = start + timedelta(seconds=offset)
        headers = FrameHeaders(
            camera_id=camera_id, seq=seq, captured_at=captured, width=180, height=120
        )
        producer.send(
            kafka.topics.frames,
            key=camera_id.encode(),
            value=scene_jpeg(seq),
            headers=headers.to_kafka_headers(),
            timestamp_ms=int(captured.timestamp() * 1000),
        )
    producer.flush()
    producer.close()
    return start


def test_footage_splits_at_gaps_and_versions_compose_by_content(
    client: TestClient,
    kafka_settings: KafkaSettings,
    sessions: sessionmaker[Session],
    s3: Minio,
    issue_key: IssueKey,
) -> None:
    camera = f"cam-{uuid.uuid4().hex[:8]}"
    start = send_frames(kafka_settings, camera, [0, 1, 2, 90, 91, 92, 93])
    body = {
        "camera_id": camera,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=3)).isoformat(),
        "gap_s": 30,
    }
    footage = client.post("/api/v1/datasets/footage/versions/from-camera", json=body)
    assert footage.status_code == 201, footage.text
    groups = client.get(f"/api/v1/datasets/footage/versions/{footage.json()['version']}").json()[
        "group_counts"
    ]
    assert sorted(groups.values()) == [3, 4] and all(g.startswith(f"{camera}/") for g in groups)

    for verdict in ("confirmed", "confirmed"):
        event = make_event(camera, review=verdict)
        add_rows(sessions, [event])
        raw = snapshot_keys(camera_id=camera, event_id=event.event_id)[1]
        put_bytes(s3, CommonSettings().s3.snapshots_bucket, raw, scene_jpeg(30), "image/jpeg")
    events = client.post("/api/v1/datasets/reviews/versions/from-events", json={})
    assert events.status_code == 201, events.text

    parts = {
        "parts": [
            {"dataset": "footage"},
            {"dataset": "reviews", "version": events.json()["version"], "label": "normal"},
        ]
    }
    composed = client.post("/api/v1/datasets/site/versions/compose", json=parts)
    assert composed.status_code == 201, composed.text
    assert composed.json()["label_counts"] == {"normal": 9}
    assert composed.json()["source"] == "composed"
    detail = client.get(f"/api/v1/datasets/site/versions/{composed.json()['version']}").json()
    assert len(detail["group_counts"]) == 4  # two stretches, and each event its own group
    again = client.post("/api/v1/datasets/site/versions/compose", json=parts)
    assert again.status_code == 200 and again.json()["version"] == composed.json()["version"]

    stranger = bearer(issue_key("operator", camera_ids=["elsewhere"]))
    hidden = client.post(
        "/api/v1/datasets/mine/versions/compose",
        json={"parts": [{"dataset": "footage"}]},
        headers=stranger,
    )
    assert hidden.status_code == 422 and "that this key can see" in hidden.json()["detail"]
