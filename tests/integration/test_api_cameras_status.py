"""Camera masks (validated polygons that ingest reads) and camera status: ingest's reports on
the status topic and inference's on the scoring-status topic, stored by ``camera_status_main``
and shown with each camera (and a model that cannot be loaded, with the model)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_model, create_camera
from tests.integration.conftest import IssueKey, StartService, bearer
from tests.support import wait_until
from vigil_shared.db.models import ModelAssignmentRow
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.camera_status import CameraStatus
from vigil_shared.schemas.events import ModelRef
from vigil_shared.schemas.scoring_status import ScoringStatus
from vigil_shared.settings import KafkaSettings

SQUARE = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]


def test_masks_are_stored_changed_and_given_to_ingest(api: TestClient) -> None:
    camera_id = create_camera(api, masks=[SQUARE])
    assert api.get(f"/api/v1/cameras/{camera_id}").json()["masks"] == [SQUARE]
    triangle = [[0.9, 0.9], [1.0, 0.9], [1.0, 1.0]]
    changed = api.patch(f"/api/v1/cameras/{camera_id}", json={"masks": [SQUARE, triangle]})
    assert changed.json()["masks"] == [SQUARE, triangle]
    ingest = {c["id"]: c for c in api.get("/api/v1/ingest/cameras", params={"limit": 500}).json()}
    assert ingest[camera_id]["masks"] == [SQUARE, triangle]
    cleared = api.patch(f"/api/v1/cameras/{camera_id}", json={"masks": []})
    assert cleared.json()["masks"] == []


@pytest.mark.parametrize(
    ("masks", "field"),
    [
        ([[[0, 0], [1, 1]]], "body.masks.0"),
        ([[[0, 0], [1.5, 0], [0, 1]]], "body.masks.0.1.0"),
        ([SQUARE] * 65, "body.masks"),
    ],
    ids=["two-points", "outside-the-picture", "too-many-polygons"],
)
def test_bad_masks_are_refused_by_field(
    api: TestClient, masks: list[list[list[float]]], field: str
) -> None:
    body = {"id": "bad-masks", "name": "x", "source": "rtsp://10.0.0.7/main", "masks": masks}
    response = api.post("/api/v1/cameras", json=body)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


def report(camera_id: str, *, state: str, at: datetime, **fields: Any) -> CameraStatus:
    values: dict[str, Any] = {
        "camera_id": camera_id,
        "state": state,
        "since": at - timedelta(minutes=1),
        "reported_at": at,
        "report_interval_s": 5.0,
        "last_frame_at": at,
        "fps": 4.8,
        "target_fps": 5.0,
        "frames_published": 100,
        "frames_dropped": 2,
        "frames_gated": 40,
        "reconnects": 0,
    }
    return CameraStatus(**(values | fields))


def publish(
    settings: KafkaSettings, topic: str, reports: Iterable[CameraStatus | ScoringStatus]
) -> None:
    producer = make_producer(settings)
    for sent in reports:
        producer.send(topic, key=sent.camera_id.encode(), value=sent.to_json_bytes())
    producer.flush()
    producer.close()


def shown(api: TestClient, camera_id: str, field: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = api.get(f"/api/v1/cameras/{camera_id}").json()[field]
    return value


def test_status_reports_are_stored_latest_first_and_shown(
    api: TestClient, kafka_settings: KafkaSettings, start_service: StartService
) -> None:
    online, silent = create_camera(api), create_camera(api)
    assert api.get(f"/api/v1/cameras/{online}").json()["status"] is None
    now = datetime.now(UTC)
    reports = (
        report(online, state="online", at=now),
        report(online, state="offline", at=now - timedelta(seconds=30), reason="older"),
        report(silent, state="online", at=now - timedelta(hours=1)),
    )
    publish(kafka_settings, kafka_settings.topics.camera_status, reports)
    recorder = start_service("vigil_api.consumers.camera_status_main")

    status = wait_until(
        lambda: shown(api, online, "status"), timeout_s=60, what="the stored status"
    )
    assert status["state"] == "online" and status["fps"] == 4.8
    assert status["frames_dropped"] == 2 and status["reason"] is None
    stale = wait_until(
        lambda: shown(api, silent, "status"), timeout_s=30, what="the silent camera's status"
    )
    assert stale["state"] == "unknown" and stale["reported_state"] == "online"
    assert recorder.stop() == 0


def test_a_model_inference_cannot_load_is_shown_with_the_camera_and_the_model(
    api: TestClient,
    kafka_settings: KafkaSettings,
    start_service: StartService,
    sessions: sessionmaker[Session],
    issue_key: IssueKey,
) -> None:
    broken, fine = create_camera(api), create_camera(api)
    model_id = add_model(sessions)
    problem = f"assigned model {model_id} cannot be loaded: tampered; scored by warmup"
    now = datetime.now(UTC)
    sent = [
        ScoringStatus(
            camera_id=broken,
            model=ModelRef(id=model_id, kind="registry"),
            assigned_model_id=model_id,
            reported_at=now - timedelta(minutes=5),
        ),
        ScoringStatus(
            camera_id=broken,
            model=ModelRef(id="warmup", kind="warmup"),
            assigned_model_id=model_id,
            problem=problem,
            reported_at=now,
        ),
        ScoringStatus(camera_id=fine, model=ModelRef(id="warmup", kind="warmup"), reported_at=now),
    ]
    # The older report arrives last: it must not win.
    publish(kafka_settings, kafka_settings.topics.scoring_status, reversed(sent))
    recorder = start_service("vigil_api.consumers.camera_status_main")

    scoring = wait_until(
        lambda: shown(api, broken, "scoring"), timeout_s=60, what="the stored scoring status"
    )
    assert scoring["problem"] == problem and scoring["model_id"] == "warmup"
    assert scoring["assigned_model_id"] == model_id
    other = wait_until(
        lambda: shown(api, fine, "scoring"), timeout_s=30, what="the other camera's status"
    )
    assert other["problem"] is None and other["assigned_model_id"] is None
    detail = api.get(f"/api/v1/models/{model_id}").json()
    assert [(p["camera_id"], p["problem"]) for p in detail["load_problems"]] == [(broken, problem)]
    # A key for the other camera sees the model once it scores that camera too (a model it
    # cannot see answers 404: test_api_models), but never the problem of a camera outside it.
    with sessions.begin() as session:
        session.add(ModelAssignmentRow(scope=fine, production_model_id=model_id, updated_by="t"))
    scoped = bearer(issue_key("viewer", camera_ids=[fine]))
    assert api.get(f"/api/v1/models/{model_id}", headers=scoped).json()["load_problems"] == []
    assert recorder.stop() == 0


def test_a_camera_far_from_its_models_motion_rate_is_noticed(
    api: TestClient,
    kafka_settings: KafkaSettings,
    start_service: StartService,
    sessions: sessionmaker[Session],
) -> None:
    """A model whose motion is in 10-fps units: a camera measured at 2 fps (under half) gets a
    notice, one at 8 fps none, one whose status has not come yet is judged by its target rate
    (50 fps: over 4.5 times); a model without motion units (the warm-up) gives none."""
    model_id = add_model(sessions, metrics={"fps": 10.0, "motion_fps": 10.0})
    slow, fine, fast, warmup = (
        create_camera(api),
        create_camera(api),
        create_camera(api, target_fps=50.0),
        create_camera(api),
    )
    now = datetime.now(UTC)
    model = ModelRef(id=model_id, kind="registry")
    sent: list[CameraStatus | ScoringStatus] = [
        ScoringStatus(camera_id=c, model=model, reported_at=now) for c in (slow, fine, fast)
    ]
    sent.append(
        ScoringStatus(camera_id=warmup, model=ModelRef(id="warmup", kind="warmup"), reported_at=now)
    )
    publish(kafka_settings, kafka_settings.topics.scoring_status, sent)
    statuses = [
        report(slow, state="online", at=now, fps=2.0, target_fps=2.0),
        report(fine, state="online", at=now, fps=8.0, target_fps=8.0),
        report(warmup, state="online", at=now, fps=1.0, target_fps=1.0),
    ]
    publish(kafka_settings, kafka_settings.topics.camera_status, statuses)
    recorder = start_service("vigil_api.consumers.camera_status_main")

    def stored() -> bool:
        cameras = {c["id"]: c for c in api.get("/api/v1/cameras", params={"limit": 500}).json()}
        scored = all(cameras[c]["scoring"] for c in (slow, fine, fast, warmup))
        return scored and all(cameras[c]["status"] for c in (slow, fine, warmup))

    wait_until(stored, timeout_s=60, what="the stored scoring and status reports")
    notices = {c: api.get(f"/api/v1/cameras/{c}").json()["rate_notice"] for c in (slow, fine)}
    assert notices[fine] is None
    assert notices[slow] is not None and "2.0 fps, under half" in notices[slow]
    fast_notice = api.get(f"/api/v1/cameras/{fast}").json()["rate_notice"]
    assert fast_notice is not None and "camera at 50.0 fps, 5.0 times the rate" in fast_notice
    assert api.get(f"/api/v1/cameras/{warmup}").json()["rate_notice"] is None
    cameras = api.get("/api/v1/cameras", params={"limit": 500}).json()
    listed = {c["id"]: c["rate_notice"] for c in cameras}
    assert listed[slow] == notices[slow] and listed[fine] is None
    console = api.get("/console/ui/cameras").text  # the operator's camera list shows it too
    assert "camera at 2.0 fps, under half the rate" in console
    assert "camera at 8.0 fps" not in console
    assert recorder.stop() == 0
