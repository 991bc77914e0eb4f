"""A job submitted through the API runs on a Celery worker and lands a verified model in S3."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio

from tests.integration.conftest import StartService
from tests.support import wait_until
from vigil_shared.datasets import DatasetManifest, NewImage, write_dataset
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import IntegrityError, get_bytes, put_bytes, sha256_hex
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.preprocess import decode

pytestmark = [pytest.mark.slow]


def normal_dataset(s3: Minio, bucket: str, ped2: Path, n: int) -> DatasetManifest:
    """Frames 1..n of Test001 and Test002 (both normal up to frame 60), one group per clip."""
    images = [
        NewImage(
            data=(ped2 / "test_frames" / clip / f"{index:03d}.jpg").read_bytes(),
            extension=".jpg",
            group=clip,
            sequence=index,
        )
        for clip in ("Test001", "Test002")
        for index in range(1, n + 1)
    ]
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    return write_dataset(s3, bucket, name=name, images=images, source="import")


def wait_for_job(api: TestClient, job_id: str, worker_alive: Any) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        worker_alive()
        job: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}").json()
        return job if job["status"] in {"succeeded", "failed"} else None

    return wait_until(finished, timeout_s=300, what=f"job {job_id} to finish")


@pytest.mark.dataset
def test_job_runs_on_the_worker_and_its_artifact_matches_its_sha256(
    ped2: Path,
    api: TestClient,
    s3: Minio,
    settings: CommonSettings,
    start_service: StartService,
) -> None:
    dataset = normal_dataset(s3, settings.s3.datasets_bucket, ped2, 20)
    worker = start_service("vigil_trainer")
    spec = {
        "name": "ped2-e2e",
        "dataset": {"name": dataset.name, "version": dataset.version},
        "image_size": 96,
        "appearance": {"bank_size": 64},
    }
    response = api.post("/api/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status"] == "queued"

    job = wait_for_job(api, job_id, worker.assert_running)
    assert job["status"] == "succeeded", job["error"]
    model = api.get(f"/api/v1/models/{job['model_id']}").json()
    assert model["job_id"] == job_id
    assert model["architecture"] == "efficientnet_lite0 patch-knn+farneback|calibrated_max"
    assert job["model_id"] in {m["id"] for m in api.get("/api/v1/models").json()}

    bucket = settings.s3.models_bucket
    artifact = get_bytes(s3, bucket, model["artifact_key"])
    assert sha256_hex(artifact) == model["artifact_sha256"]
    manifest = ModelManifest.model_validate_json(get_bytes(s3, bucket, model["manifest_key"]))
    assert manifest.artifact_sha256 == model["artifact_sha256"]
    assert manifest.n_images == 40
    assert manifest.dataset_sha256 == dataset.version
    assert manifest.own_weights().sha256 == (
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    )
    frame_model = load_frame_model(s3, bucket=bucket, model_id=manifest.model_id, device="cpu")
    assert frame_model.manifest.threshold == pytest.approx(model["threshold"])
    images = [decode((ped2 / "test_frames" / "Test001" / "001.jpg").read_bytes())] * 2
    scores = frame_model.score_frames(["cam", "cam"], images)
    assert all(s.heatmap is not None for s in scores)
    assert scores[1].score < model["threshold"]  # a still, normal scene is not an anomaly

    put_bytes(s3, bucket, model["artifact_key"], artifact[:-8] + b"\0" * 8, "application/x")
    with pytest.raises(IntegrityError, match="does not match its recorded sha256"):
        load_frame_model(s3, bucket=bucket, model_id=manifest.model_id, device="cpu")


def test_job_on_a_missing_dataset_is_refused_with_a_clear_error(api: TestClient) -> None:
    name = f"missing-{uuid.uuid4().hex[:8]}"
    response = api.post("/api/v1/jobs", json={"name": "empty", "dataset": {"name": name}})
    assert response.status_code == 422, response.text
    assert f"dataset {name!r} does not exist" in response.json()["detail"]


def test_invalid_spec_is_refused_with_field_level_problems(api: TestClient) -> None:
    spec = {"name": "x", "dataset": {"name": "../etc/"}, "image_size": 100, "epochs": 3}
    response = api.post("/api/v1/jobs", json=spec)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {
        "body.one_class.dataset.name",
        "body.one_class.image_size",
        "body.one_class.epochs",
    }
    assert api.get("/api/v1/jobs", params={"status": "queued"}).status_code == 200


def test_unknown_job_is_a_problem_404(api: TestClient) -> None:
    response = api.get(f"/api/v1/jobs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"
    assert json.loads(response.text)["status"] == 404
