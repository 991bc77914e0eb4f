"""One camera, retrained in one call: its frames (two stretches of footage) and its reviews
become a dataset, the trainer fits the production model's spec on it, and the candidate and
production are compared on the same held-out groups; the gate reads that comparison."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio
from PIL import Image, ImageDraw
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_model, add_rows, create_camera, make_event, scene_bank, scene_jpeg
from tests.integration.conftest import ADMIN_KEY, StartService, bearer
from tests.support import wait_until
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.datasets import DatasetRef
from vigil_shared.kafka import make_producer
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.schemas.frames import FrameHeaders
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import CommonSettings, KafkaSettings
from vigil_shared.storage import put_bytes, sha256_hex
from vigil_shared.topics import Topics


@pytest.fixture
def client(topics: Topics) -> Iterator[TestClient]:
    """The API reading this test's own topic namespace."""
    with TestClient(create_app(ApiSettings()), headers=bearer(ADMIN_KEY)) as api:
        yield api


def production_model(sessions: sessionmaker[Session], s3: Minio, settings: CommonSettings) -> str:
    """A one_class model (``scene_bank``) whose manifest records a small spec to retrain with."""
    artifact, template = scene_bank()
    model_id = f"m-prod-{uuid.uuid4().hex[:8]}"
    spec = OneClassSpec(
        name="lobby",
        dataset=DatasetRef(name="scene"),
        image_size=96,
        appearance={"bank_size": 64},
        motion=None,
    )
    key = ModelManifest.artifact_key_for(model_id)
    # At 0.05 the scene's own frames are quiet and the intruder hot (as in test_closed_loop_e2e).
    update = {"model_id": model_id, "artifact_key": key, "spec": spec, "threshold": 0.05}
    manifest = template.model_copy(update=update)
    bucket = settings.s3.models_bucket
    put_bytes(s3, bucket, key, artifact, "application/octet-stream")
    body = manifest.model_dump_json(by_alias=True).encode()
    put_bytes(s3, bucket, ModelManifest.manifest_key(model_id), body, "application/json")
    return add_model(
        sessions,
        model_id=model_id,
        artifact_key=key,
        manifest_key=ModelManifest.manifest_key(model_id),
        artifact_sha256=sha256_hex(artifact),
        threshold=manifest.threshold,
    )


# Nobody raised or reviewed this frame of the footage, but production scores it hot.
UNRAISED = 3


def send_footage(kafka: KafkaSettings, camera_id: str, start: datetime) -> None:
    """Two stretches of 8 frames a second apart, two minutes between them; frame ``UNRAISED``
    shows the intruder."""
    producer = make_producer(kafka)
    for seq in range(16):
        captured = start + timedelta(seconds=seq + (120 if seq >= 8 else 0))
        headers = FrameHeaders(
            camera_id=camera_id, seq=seq, captured_at=captured, width=180, height=120
        )
        producer.send(
            kafka.topics.frames,
            key=camera_id.encode(),
            value=intruder_jpeg() if seq == UNRAISED else scene_jpeg(seq % 8),
            headers=headers.to_kafka_headers(),
            timestamp_ms=int(captured.timestamp() * 1000),
        )
    producer.flush()
    producer.close()


def intruder_jpeg() -> bytes:
    image = Image.new("L", (180, 120), 110)
    ImageDraw.Draw(image).rectangle((40, 10, 140, 110), fill=250)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def review(
    sessions: sessionmaker[Session],
    s3: Minio,
    camera_id: str,
    verdict: str,
    image: bytes,
    span: dict[str, Any] | None = None,
) -> None:
    event = make_event(camera_id, review=verdict, reviewed_by="night shift", **(span or {}))
    add_rows(sessions, [event])
    raw_key = snapshot_keys(camera_id=camera_id, event_id=event.event_id)[1]
    put_bytes(s3, CommonSettings().s3.snapshots_bucket, raw_key, image, "image/jpeg")


def test_a_camera_is_retrained_from_its_reviews_and_compared_with_production(
    client: TestClient,
    sessions: sessionmaker[Session],
    s3: Minio,
    settings: CommonSettings,
    kafka_settings: KafkaSettings,
    start_service: StartService,
) -> None:
    camera = create_camera(client)
    body: dict[str, Any] = {"start": "2026-12-01T00:00:00Z", "end": "2026-12-01T01:00:00Z"}
    orphan = client.post(f"/api/v1/cameras/{camera}/retrain", json=body)
    assert orphan.status_code == 409 and "no production model" in orphan.json()["detail"]

    production = production_model(sessions, s3, settings)
    assert client.post(f"/api/v1/models/{production}/promote", json={"scope": [camera]}).is_success
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    send_footage(kafka_settings, camera, start)
    # Confirmed while frames 8 and 9 were captured: those are not normal footage.
    during = {
        "started_at": start + timedelta(seconds=128),
        "ended_at": start + timedelta(seconds=129),
    }
    review(sessions, s3, camera, "confirmed", intruder_jpeg(), during)
    review(sessions, s3, camera, "false_positive", scene_jpeg(20))
    # The first stretch alone is 8 s: one group, which the fit (cutting from a minute on) keeps
    # whole, so it is refused before anything is stored.
    first = {"start": start.isoformat(), "end": (start + timedelta(seconds=30)).isoformat()}
    refused = client.post(f"/api/v1/cameras/{camera}/retrain", json=first)
    assert refused.status_code == 422, refused.text
    assert "make 1 group(s) of normal footage for the fit" in refused.text
    worker = start_service("vigil_trainer")

    body = {"start": start.isoformat(), "end": (start + timedelta(minutes=5)).isoformat()}
    response = client.post(f"/api/v1/cameras/{camera}/retrain", json=body)
    assert response.status_code == 202, response.text
    retrained = response.json()
    assert retrained["production_model_id"] == production
    assert retrained["dataset"]["name"] == f"retrain-{camera.lower()}"
    assert retrained["dataset"]["label_counts"] == {"normal": 15, "abnormal": 1}
    detail = client.get(
        f"/api/v1/datasets/{retrained['dataset']['name']}/versions/"
        f"{retrained['dataset']['version']}"
    ).json()
    assert len(detail["group_counts"]) == 4  # two stretches of footage, two events

    def finished() -> dict[str, Any] | None:
        worker.assert_running()
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{retrained['job']['id']}").json()
        return job if job["status"] in {"succeeded", "failed"} else None

    job = wait_until(finished, timeout_s=300, what="the retrain job to finish")
    assert job["status"] == "succeeded", job["error"]
    # The fit's expected false alarms per camera-hour, with its interval, shown by the API.
    expected = client.get(f"/api/v1/models/{job['model_id']}").json()["expected_false_alarms"]
    assert 0 < expected["low"] <= expected["per_hour"] <= expected["high"]
    assert expected["calibration_hours"] > 0
    assert (expected["open_k"], expected["open_n"]) == (3, 5)  # the debounce it counted with
    (evaluation,) = client.get("/api/v1/evaluations", params={"camera_id": camera}).json()
    assert evaluation["model_id"] == job["model_id"] and evaluation["job_id"] == job["id"]
    assert evaluation["production_model_id"] == production and evaluation["scope"] == camera
    assert f"{camera}/event-" in " ".join(evaluation["groups"])
    for figures in (evaluation["metrics"], evaluation["production_metrics"]):
        assert 0.0 <= figures["auroc"] <= 1.0 and figures["event_recall"] in (0.0, 1.0)
        assert figures["false_alarms_per_hour"] >= 0.0
    assert evaluation["detail"]["abnormal_frames"] == 1
    # Trimmed by production before the fit: the intruder's frame (hot) never reached the banks,
    # nor the second stretch (within 5 s of the confirmed event, whose frames the API dropped).
    trim = evaluation["detail"]["trim"]
    assert trim["production_model_id"] == production and trim["footage_frames"] == 14
    assert trim["left_out"] == {"hot": 1, "near_event": 6, "short_run": 0}
    assert trim["kept_frames"] == 7
    assert job["spec"]["trim_margin_s"] == 5.0

    policy = {"auroc_tolerance": 1.0, "recall_tolerance": 1.0}
    assert client.put(f"/api/v1/gate-policies/{camera}", json=policy).status_code == 200
    decision = client.post(f"/api/v1/models/{job['model_id']}/gate", json={"scope": camera})
    assert decision.json()["passed"], decision.json()["summary"]
    assert decision.json()["evaluation_id"] == evaluation["id"]
    assert [c["candidate"] for c in decision.json()["checks"]] == [
        evaluation["metrics"]["auroc"],
        evaluation["metrics"]["event_recall"],
    ]
