"""A job whose pretrained weights the trainer could not find is refused at submission (422 with
the import command), not accepted and failed later; imported weights, the packaged Lite0, a
parent model or an allowed download let it through. The API reads the records, never torch."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio

from tests.factories import good_entries, zip_bytes
from tests.integration.conftest import ADMIN_KEY
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.storage import put_bytes
from vigil_shared.weights_store import ImportedWeights, weights_keys

MakeApi = Callable[..., TestClient]


@pytest.fixture
def models_bucket(s3: Minio, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A models bucket of this test's own: no other run's imports in it."""
    bucket = f"vigil-test-weights-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("VIGIL_S3_MODELS_BUCKET", bucket)
    yield bucket
    for obj in s3.list_objects(bucket, recursive=True):
        s3.remove_object(bucket, obj.object_name or "")
    s3.remove_bucket(bucket)


@pytest.fixture
def make_api(models_bucket: str) -> Iterator[MakeApi]:
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        client = TestClient(
            create_app(ApiSettings(**settings)), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def dataset(make_api: MakeApi) -> str:
    api = make_api()
    name = f"weights-{uuid.uuid4().hex[:8]}"
    files = {"archive": ("d.zip", zip_bytes(good_entries()), "application/zip")}
    response = api.post(f"/api/v1/datasets/{name}/versions", files=files)
    assert response.status_code == 201, response.text
    return name


def classify(dataset: str, **fields: Any) -> dict[str, Any]:
    return {"task": "classify", "name": "gate", "dataset": {"name": dataset}, **fields}


def import_record(s3: Minio, bucket: str, arch: str) -> str:
    """What ``import-weights`` leaves beside the file: its provenance record."""
    sha256 = uuid.uuid4().hex * 2
    record = ImportedWeights(
        architecture=arch,
        sha256=sha256,
        source="https://example.invalid/resnet18.pth",
        original_name="resnet18.pth",
        original_sha256=sha256,
        imported_at=datetime.now(UTC),
    )
    _, key = weights_keys(arch, sha256)
    put_bytes(s3, bucket, key, record.model_dump_json().encode(), "application/json")
    return sha256


def test_a_job_without_weights_is_refused_with_the_import_command(
    make_api: MakeApi, dataset: str
) -> None:
    name = f"gate-{uuid.uuid4().hex[:8]}"
    spec = classify(dataset, architecture="resnet18") | {"name": name}
    response = make_api().post("/api/v1/jobs", json=spec)
    assert response.status_code == 422, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == "body.architecture"
    assert "python -m vigil_trainer import-weights --arch resnet18" in error["message"]
    assert make_api().get("/api/v1/jobs", params={"name": name}).json()["items"] == []


def test_imported_weights_let_the_job_through_and_a_wrong_pin_does_not(
    make_api: MakeApi, dataset: str, s3: Minio, models_bucket: str
) -> None:
    sha256 = import_record(s3, models_bucket, "resnet18")
    api = make_api()
    accepted = api.post("/api/v1/jobs", json=classify(dataset, architecture="resnet18"))
    assert accepted.status_code == 202, accepted.text
    pinned = classify(dataset, architecture="resnet18", weights_sha256=sha256)
    assert api.post("/api/v1/jobs", json=pinned).status_code == 202
    wrong = classify(dataset, architecture="resnet18", weights_sha256="0" * 64)
    refused = api.post("/api/v1/jobs", json=wrong)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.weights_sha256"
    other_arch = api.post("/api/v1/jobs", json=classify(dataset, architecture="resnet50"))
    assert other_arch.status_code == 422, "resnet18's weights are not resnet50's"


def test_jobs_that_need_no_imported_weights_are_accepted(make_api: MakeApi, dataset: str) -> None:
    api = make_api()
    for spec in (
        classify(dataset),  # efficientnet_lite0: its weights come with a package
        {"name": "walkway", "dataset": {"name": dataset}},  # one_class: Lite0 too
    ):
        assert api.post("/api/v1/jobs", json=spec).status_code == 202, spec
    downloading = make_api(trainer_allows_weight_download=True)
    response = downloading.post("/api/v1/jobs", json=classify(dataset, architecture="vgg16"))
    assert response.status_code == 202, response.text


def test_the_trainers_download_switch_is_read_by_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TRAINER_ALLOW_WEIGHT_DOWNLOAD", "true")
    assert ApiSettings().trainer_allows_weight_download
