"""Models: lineage and manifest, comparison on one evaluation, promotion/shadow/rollback that
reach the assignment topic before they are recorded, and short-lived artifact downloads."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import MODEL_ARTIFACT, add_dataset, add_stored_model, create_camera
from tests.integration.conftest import ADMIN_KEY, IssueKey, bearer
from tests.support import read_topic
from vigil_api.core.settings import ApiSettings
from vigil_api.domain.registry_stages import Publisher
from vigil_api.main import create_app
from vigil_shared.db.models import ModelStageChange
from vigil_shared.kafka import KafkaUnavailableError
from vigil_shared.schemas.assignments import ModelAssignment
from vigil_shared.settings import KafkaSettings
from vigil_shared.storage import sha256_hex
from vigil_shared.topics import Topics


@pytest.fixture
def client(topics: Topics) -> Iterator[TestClient]:
    """The API publishing on this test's own topic namespace."""
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(ApiSettings()), headers=headers) as api:
        yield api


def assignments_on_topic(count: int) -> list[ModelAssignment]:
    settings = KafkaSettings()
    records = read_topic(settings, settings.topics.model_assignments, count=count, timeout_s=20)
    return sorted(
        (ModelAssignment.model_validate_json(r.value) for r in records),
        key=lambda a: a.changed_at,
    )


def test_a_model_shows_its_lineage_and_manifest(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    parent = add_stored_model(sessions, s3)
    child = add_stored_model(sessions, s3, parent=parent)
    body = client.get(f"/api/v1/models/{child}").json()
    assert body["parent_model_id"] == parent and body["dataset_name"] == "walkway"
    assert body["dataset_version"] == "a" * 64 and body["stage"] == "candidate"
    assert body["manifest"]["model_id"] == child and body["assignments"] == []
    assert client.get("/api/v1/models/nope").status_code == 404


def test_promotion_reaches_the_topic_and_rollback_walks_back(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    camera = create_camera(client)
    first, second, third = (add_stored_model(sessions, s3) for _ in range(3))
    for model_id in (first, second, third):
        response = client.post(f"/api/v1/models/{model_id}/promote", json={"scope": [camera]})
        assert response.status_code == 200, response.text
    assert client.get(f"/api/v1/cameras/{camera}").json()["model_id"] == third
    stages = {m: client.get(f"/api/v1/models/{m}").json()["stage"] for m in (first, third)}
    assert stages == {first: "archived", third: "production"}

    back = client.post("/api/v1/models/rollback", json={"scope": camera})
    assert back.status_code == 200, back.text
    assert back.json()["production_model_id"] == second
    again = client.post("/api/v1/models/rollback", json={"scope": camera}).json()
    assert again["production_model_id"] == first and again["action"] == "rollback"
    assert client.get(f"/api/v1/cameras/{camera}").json()["model_id"] == first
    none_left = client.post("/api/v1/models/rollback", json={"scope": camera})
    assert none_left.status_code == 409
    assert "no earlier production model" in none_left.json()["detail"]

    published = assignments_on_topic(5)
    assert [(a.scope, a.action.value, a.production_model_id) for a in published] == [
        (camera, "promote", first),
        (camera, "promote", second),
        (camera, "promote", third),
        (camera, "rollback", second),
        (camera, "rollback", first),
    ]
    assert published[1].previous_production_model_id == first
    # The registry's sha256 travels with the assignment: inference checks the artifact against it.
    assert {a.production_artifact_sha256 for a in published} == {sha256_hex(MODEL_ARTIFACT)}
    assert all(a.actor == "env-admin" for a in published)


def test_shadow_keeps_production_and_global_is_its_own_scope(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    production, candidate = add_stored_model(sessions, s3), add_stored_model(sessions, s3)
    assert client.post(f"/api/v1/models/{production}/promote", json={"scope": "global"}).is_success
    shadowed = client.post(f"/api/v1/models/{candidate}/shadow", json={"scope": "global"})
    assert shadowed.status_code == 200, shadowed.text
    (assignment,) = shadowed.json()
    assert assignment["scope"] == "*" and assignment["production_model_id"] == production
    assert assignment["shadow_model_id"] == candidate
    assert assignment["shadow_artifact_sha256"] == sha256_hex(MODEL_ARTIFACT)
    detail = client.get(f"/api/v1/models/{candidate}").json()
    assert detail["stage"] == "candidate" and detail["assignments"][0]["scope"] == "*"
    stop = client.post(f"/api/v1/models/{candidate}/shadow", json={"scope": "global", "stop": True})
    assert stop.json()[0]["shadow_model_id"] is None


def test_a_publish_failure_is_a_503_and_changes_nothing(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    camera = create_camera(client)
    model_id = add_stored_model(sessions, s3)

    class DownProducer:
        def send(self, *args: Any, **kwargs: Any) -> None:
            raise KafkaTimeoutError("no broker")

    app: Any = client.app
    clients = app.state.clients
    broken = Publisher(producer=cast(KafkaProducer, DownProducer()), topic="unused")
    app.state.clients = dataclasses.replace(clients, assignments=broken)
    try:
        response = client.post(f"/api/v1/models/{model_id}/promote", json={"scope": [camera]})
        patched = client.patch(f"/api/v1/cameras/{camera}", json={"model_id": model_id})
    finally:
        app.state.clients = clients
    assert response.status_code == 503 and "did not acknowledge" in response.json()["detail"]
    assert patched.status_code == 503
    assert client.get(f"/api/v1/cameras/{camera}").json()["model_id"] is None
    assert client.get(f"/api/v1/models/{model_id}").json()["stage"] == "candidate"
    with sessions() as session:
        changes = session.scalars(
            select(ModelStageChange).where(ModelStageChange.scope == camera)
        ).all()
    assert changes == []


def test_scoped_keys_change_only_their_cameras(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio, issue_key: IssueKey
) -> None:
    mine, other = create_camera(client), create_camera(client)
    # A model the key may see (trained on its camera's frames): a model outside its scope is
    # answered as one that does not exist (test_a_scoped_key_sees_only_models_of_its_cameras).
    model_id = add_stored_model(sessions, s3, dataset_version=add_dataset(sessions, [mine]))
    key = bearer(issue_key("operator", camera_ids=[mine]))
    url = f"/api/v1/models/{model_id}/promote"
    assert client.post(url, json={"scope": "global"}, headers=key).status_code == 403
    refused = client.post(url, json={"scope": [mine, other]}, headers=key)
    assert refused.status_code == 404 and other in refused.json()["detail"]
    assert (
        client.post("/api/v1/models/rollback", json={"scope": other}, headers=key).status_code
        == 404
    )
    assert client.post(url, json={"scope": [mine]}, headers=key).status_code == 200
    scopes = {a["scope"] for a in client.get("/api/v1/models/assignments", headers=key).json()}
    assert mine in scopes and other not in scopes and scopes <= {mine, "*"}
    viewer = bearer(issue_key("viewer", camera_ids=[mine]))
    assert client.post(url, json={"scope": [mine]}, headers=viewer).status_code == 403


def test_a_scoped_key_sees_only_models_of_its_cameras(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio, issue_key: IssueKey
) -> None:
    mine, other = create_camera(client), create_camera(client)
    trained_here = add_stored_model(sessions, s3, dataset_version=add_dataset(sessions, [mine]))
    trained_there = add_stored_model(sessions, s3, dataset_version=add_dataset(sessions, [other]))
    trained_on_both = add_stored_model(
        sessions, s3, dataset_version=add_dataset(sessions, [mine, other])
    )
    assigned_here, fleet = add_stored_model(sessions, s3), add_stored_model(sessions, s3)
    promoted = client.post(f"/api/v1/models/{assigned_here}/promote", json={"scope": [mine]})
    assert promoted.status_code == 200
    created = {trained_here, trained_there, trained_on_both, assigned_here, fleet}
    key = bearer(issue_key("viewer", camera_ids=[mine]))

    def listed(headers: dict[str, str] | None = None) -> set[str]:
        page = client.get("/api/v1/models", params={"limit": 500}, headers=headers).json()
        return {m["id"] for m in page} & created

    assert listed(key) == {trained_here, assigned_here}
    assert listed() == created  # an unscoped key sees every model
    for hidden in (trained_there, trained_on_both, fleet):
        for path in ("", "/download"):
            response = client.get(f"/api/v1/models/{hidden}{path}", headers=key)
            assert response.status_code == 404, path  # as a model that does not exist
            assert response.json()["detail"] == f"model {hidden} does not exist"
        compared = client.get(
            "/api/v1/models/compare", params={"a": trained_here, "b": hidden}, headers=key
        )
        assert compared.status_code == 404
    for visible in (trained_here, assigned_here):
        assert client.get(f"/api/v1/models/{visible}/download", headers=key).status_code == 200
    operator = bearer(issue_key("operator", camera_ids=[mine]))
    promote = client.post(
        f"/api/v1/models/{fleet}/promote", json={"scope": [mine]}, headers=operator
    )
    assert promote.status_code == 404
    assign = client.patch(f"/api/v1/cameras/{mine}", json={"model_id": fleet}, headers=operator)
    assert assign.status_code == 422 and "does not exist" in assign.json()["detail"]
    assert listed(key) == {trained_here, assigned_here}  # still: nothing was assigned


def test_compare_only_on_the_same_evaluation(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    a = add_stored_model(sessions, s3, metrics={"auroc": 0.8, "f1": 0.5})
    b = add_stored_model(sessions, s3, metrics={"auroc": 0.9, "loss": 0.1})
    body = client.get("/api/v1/models/compare", params={"a": a, "b": b}).json()
    assert body["metrics"]["auroc"]["delta"] == pytest.approx(0.1)
    assert body["metrics"]["f1"] == {"a": 0.5, "b": None, "delta": None}
    other_data = add_stored_model(sessions, s3, dataset_version="b" * 64)
    refused = client.get("/api/v1/models/compare", params={"a": a, "b": other_data})
    assert refused.status_code == 409 and "same dataset version" in refused.json()["detail"]
    other_split = add_stored_model(sessions, s3, groups=["clip-2"])
    split = client.get("/api/v1/models/compare", params={"a": a, "b": other_split})
    assert split.status_code == 409 and "validation groups" in split.json()["detail"]


def test_download_is_a_presigned_url_that_expires(
    sessions: sessionmaker[Session], s3: Minio
) -> None:
    model_id = add_stored_model(sessions, s3)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(ApiSettings(download_url_expiry_s=2)), headers=headers) as api:
        body = api.get(f"/api/v1/models/{model_id}/download").json()
    assert body["artifact_sha256"] == sha256_hex(MODEL_ARTIFACT)
    fetched = httpx.get(body["url"])
    assert fetched.status_code == 200 and fetched.content == MODEL_ARTIFACT
    time.sleep(3.5)
    assert httpx.get(body["url"]).status_code == 403


def test_clear_and_delete_are_changes_too(
    client: TestClient, sessions: sessionmaker[Session], s3: Minio
) -> None:
    camera = create_camera(client)
    first, second = add_stored_model(sessions, s3), add_stored_model(sessions, s3)
    for model_id in (first, second):
        assert client.patch(f"/api/v1/cameras/{camera}", json={"model_id": model_id}).is_success
    assert client.patch(f"/api/v1/cameras/{camera}", json={"model_id": None}).is_success
    back = client.post("/api/v1/models/rollback", json={"scope": camera}).json()
    assert back["production_model_id"] == second  # the clear is undone first
    assert client.delete(f"/api/v1/cameras/{camera}").status_code == 204
    scopes = {a["scope"] for a in client.get("/api/v1/models/assignments").json()}
    assert camera not in scopes
    published = assignments_on_topic(5)
    assert [a.action.value for a in published] == [
        "promote",
        "promote",
        "clear",
        "rollback",
        "clear",
    ]
    assert published[-1].production_model_id is None


def test_the_api_needs_kafka_to_start_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("VIGIL_KAFKA_BOOTSTRAP_TIMEOUT_MS", "2000")
    with (
        pytest.raises(KafkaUnavailableError, match="VIGIL_KAFKA_BOOTSTRAP_SERVERS"),
        TestClient(create_app(ApiSettings())),
    ):
        pass
