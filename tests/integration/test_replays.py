"""A replay of retained frames through a candidate, on a real trainer worker: its events go to
the replay topic and table only, its report sets them against production's reviewed events,
and a second run of the same replay gives the same ids without duplicating a row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_events, add_model, add_rows, make_camera, make_event, make_model
from tests.integration.conftest import StartService
from tests.integration.one_class_scene import Scene, publish_scenes, store_scene_model
from tests.support import ServiceProcess, read_topic, wait_until
from vigil_shared.db.models import Event
from vigil_shared.db.replay_models import ReplayEvent
from vigil_shared.schemas.events import EventMessage
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import get_bytes
from vigil_shared.topics import Topics

pytestmark = pytest.mark.slow
STEPS = 100  # 10 s of capture at 10 frames a second: anomalies at steps 30-53 and 90-99


def register(sessions: sessionmaker[Session], s3: Minio, bucket: str) -> str:
    model_id = store_scene_model(s3, bucket)
    manifest = ModelManifest.model_validate_json(
        get_bytes(s3, bucket, ModelManifest.manifest_key(model_id))
    )
    row = make_model(
        model_id, artifact_sha256=manifest.artifact_sha256, threshold=manifest.threshold
    )
    add_rows(sessions, [row])
    return model_id


def finished(api: TestClient, replay_id: str, worker: ServiceProcess) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        worker.assert_running()
        body: dict[str, Any] = api.get(f"/api/v1/replays/{replay_id}").json()
        return body if body["status"] in {"succeeded", "failed"} else None

    return wait_until(done, timeout_s=300, what=f"replay {replay_id} to finish")


def test_a_replay_raises_namespaced_deterministic_events_and_reports(
    api: TestClient,
    kafka_settings: KafkaSettings,
    topics: Topics,
    s3: Minio,
    settings: CommonSettings,
    sessions: sessionmaker[Session],
    start_service: StartService,
) -> None:
    camera_id = f"cam-{uuid.uuid4().hex[:8]}"
    add_rows(sessions, [make_camera(camera_id)])
    model_id = register(sessions, s3, settings.s3.models_bucket)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=20)
    publish_scenes(
        kafka_settings, topics.frames, {camera_id: Scene(0, first=30)}, steps=STEPS, start=start
    )
    # Production raised one event during the walker's run (confirmed) and one on a quiet
    # stretch (reviewed a false alarm).
    confirmed, rejected = add_events(
        sessions,
        [
            make_event(
                camera_id,
                started_at=start + timedelta(seconds=3.2),
                ended_at=start + timedelta(seconds=5),
                review="confirmed",
            ),
            make_event(
                camera_id,
                started_at=start + timedelta(seconds=0.5),
                ended_at=start + timedelta(seconds=1.5),
                review="false_positive",
            ),
        ],
    )
    body = {
        "model_id": model_id,
        "camera_ids": [camera_id],
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=STEPS / 10)).isoformat(),
    }
    worker = start_service("vigil_trainer", VIGIL_TRAINER_DEVICE="cpu")

    first = api.post("/api/v1/replays", json=body)
    assert first.status_code == 202, first.text
    replay = finished(api, first.json()["id"], worker)
    assert replay["status"] == "succeeded", replay["error"]
    report = replay["report"]
    assert report["frames_scored"] == STEPS
    assert report["replay_events"] >= 1
    assert report["production_events"] == 2
    assert report["reviews"]["confirmed_raised"] == [confirmed]
    assert report["reviews"]["false_positives_avoided"] == [rejected]
    assert report["note"] is None

    events = api.get(f"/api/v1/replays/{replay['id']}/events").json()
    assert len(events) == report["replay_events"]
    ids = {e["event_id"] for e in events}
    assert all(e["model_id"] == model_id and e["ended_at"] for e in events)
    messages = [
        EventMessage.model_validate_json(r.value)
        for r in read_topic(kafka_settings, topics.replay_events, count=len(events) * 2)
    ]
    assert {str(m.event_id) for m in messages} == ids
    # The live namespace is untouched: no message on the events topic, no new events row.
    assert read_topic(kafka_settings, topics.events, count=1, timeout_s=3) == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 2

    second = api.post("/api/v1/replays", json=body)
    again = finished(api, second.json()["id"], worker)
    assert again["status"] == "succeeded", again["error"]
    assert again["scope_key"] == replay["scope_key"] and again["id"] != replay["id"]
    rerun = api.get(f"/api/v1/replays/{again['id']}/events").json()
    assert {e["event_id"] for e in rerun} == ids
    assert {e["replay_id"] for e in rerun} == {again["id"]}
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(ReplayEvent))
    assert rows == len(ids)
    timeline = api.get(f"/api/v1/cameras/{camera_id}/loop").json()["steps"]
    replayed = [step["ref"] for step in timeline if step["kind"] == "replay"]
    assert sorted(replayed) == sorted([replay["id"], again["id"]])


def test_bad_replays_are_refused_and_an_unretained_range_says_why(
    api: TestClient,
    topics: Topics,
    sessions: sessionmaker[Session],
    s3: Minio,
    settings: CommonSettings,
    start_service: StartService,
) -> None:
    camera_id = f"cam-{uuid.uuid4().hex[:8]}"
    add_rows(sessions, [make_camera(camera_id)])
    model_id = register(sessions, s3, settings.s3.models_bucket)
    old = datetime(2026, 1, 1, tzinfo=UTC)
    body = {
        "model_id": model_id,
        "camera_ids": [camera_id],
        "start": old.isoformat(),
        "end": (old + timedelta(hours=1)).isoformat(),
    }
    for change, field in (
        ({"model_id": "m-nope"}, "model_id"),
        ({"camera_ids": ["nope"]}, "camera_ids"),
    ):
        refused = api.post("/api/v1/replays", json=body | change)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    backwards = api.post("/api/v1/replays", json=body | {"end": body["start"]})
    assert backwards.status_code == 422
    assert api.get(f"/api/v1/replays/{uuid.uuid4()}").status_code == 404

    worker = start_service("vigil_trainer", VIGIL_TRAINER_DEVICE="cpu")
    queued = api.post("/api/v1/replays", json=body)
    assert queued.status_code == 202, queued.text
    replay = finished(api, queued.json()["id"], worker)
    assert replay["status"] == "succeeded", replay["error"]
    assert replay["report"]["frames_scored"] == 0
    assert "24 h" in replay["report"]["note"]
    # A registry row whose artifact is gone: the replay fails and says why.
    missing = add_model(sessions)
    broken = api.post("/api/v1/replays", json=body | {"model_id": missing})
    failed = finished(api, broken.json()["id"], worker)
    assert failed["status"] == "failed", failed
    assert failed["error"] and not failed["error"].startswith("internal error"), failed
    listed = [r["id"] for r in api.get("/api/v1/replays").json()]
    assert listed == [failed["id"], replay["id"]]
