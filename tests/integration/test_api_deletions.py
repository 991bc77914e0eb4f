"""DELETE for events, dataset versions and models, each in the audit log; refused (409) while
something still needs it: a dataset a model was trained on or a job will read (unless forced),
a model that is assigned or an ensemble's member. Cameras carry their retention."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_job, add_model, add_rows, camera_dataset, make_event, make_model
from tests.integration.conftest import IssueKey, bearer
from vigil_shared.datasets import list_versions
from vigil_shared.db.models import DeletedEvent, ModelAssignmentRow
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import CommonSettings
from vigil_shared.storage import list_keys, put_bytes


def audit(api: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/api/v1/audit/deletions", params=params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_an_operator_deletes_an_event_with_its_snapshots_and_the_audit_says_so(
    api: TestClient,
    issue_key: IssueKey,
    sessions: sessionmaker[Session],
    s3: Minio,
    settings: CommonSettings,
) -> None:
    camera = f"del-{uuid.uuid4().hex[:8]}"
    event = make_event(camera, 0)
    keys = snapshot_keys(camera_id=camera, event_id=event.event_id)
    for key in keys:
        put_bytes(s3, settings.s3.snapshots_bucket, key, b"jpeg", "image/jpeg")
    add_rows(sessions, [event])
    operator = issue_key("operator", name="privacy officer")
    url = f"/api/v1/events/{event.event_id}"

    deleted = api.delete(url, params={"reason": "erasure request 114"}, headers=bearer(operator))
    assert deleted.status_code == 204, deleted.text
    assert api.get(url).status_code == 404
    assert api.delete(url, headers=bearer(operator)).status_code == 404
    assert not list(list_keys(s3, settings.s3.snapshots_bucket, f"events/{camera}/"))
    with sessions() as session:
        assert session.get(DeletedEvent, event.event_id) is not None, "no tombstone"

    [record] = audit(api, target=camera)
    assert (record["actor"], record["kind"]) == ("privacy officer", "events")
    assert record["reason"] == "erasure request 114"
    assert record["detail"] == {"count": 1, "event_ids": [str(event.event_id)]}
    [newest, *_] = audit(api, kind="events", before=record["id"] + 1)
    assert newest["id"] == record["id"], "paging: rows older than `before`, newest first"
    assert api.get("/api/v1/audit/deletions", headers=bearer(operator)).status_code == 403


def test_a_dataset_a_model_or_job_needs_is_refused_unless_forced(
    api: TestClient, sessions: sessionmaker[Session], s3: Minio, settings: CommonSettings
) -> None:
    bucket = settings.s3.datasets_bucket
    old = utc_now() - timedelta(days=2)
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    lineage = camera_dataset(sessions, s3, bucket, camera_id=camera, captured_at=old)
    model_id = add_model(sessions, dataset_name=lineage.name, dataset_version=lineage.version)
    pending = camera_dataset(sessions, s3, bucket, camera_id=None, captured_at=old)
    job_id = add_job(sessions, spec={"task": "one_class", "dataset": {"name": pending.name}})
    free = camera_dataset(sessions, s3, bucket, camera_id=None, captured_at=old)

    def url(row: Any) -> str:
        return f"/api/v1/datasets/{row.name}/versions/{row.version}"

    refused = api.delete(url(lineage))
    assert refused.status_code == 409, refused.text
    assert f"models {model_id}" in refused.json()["detail"]
    assert "force=true" in refused.json()["detail"]
    by_job = api.delete(url(pending))
    assert by_job.status_code == 409 and f"jobs {job_id}" in by_job.json()["detail"]
    assert list_versions(s3, bucket, lineage.name), "a refusal deletes nothing"

    assert api.delete(url(free)).status_code == 204
    assert api.get(url(free)).status_code == 404
    assert not list(list_keys(s3, bucket, f"datasets/{free.name}/"))

    forced = api.delete(url(lineage), params={"force": "true", "reason": "camera removed"})
    assert forced.status_code == 204, forced.text
    [record] = audit(api, target=f"{lineage.name}@{lineage.version}")
    assert record["kind"] == "dataset" and record["reason"] == "camera removed"
    assert record["detail"]["forced"] is True
    assert record["detail"]["needed_by"] == {"models": [model_id]}


def stored_model(
    sessions: sessionmaker[Session], s3: Minio, *, members: tuple[str, ...] = ()
) -> str:
    """A registry row with its artifact and manifest in S3; ``members``: an ensemble's."""
    model_id = f"m-del-{uuid.uuid4().hex[:10]}"
    bucket = CommonSettings().s3.models_bucket
    artifact = ModelManifest.artifact_key_for(model_id)
    manifest = ModelManifest.manifest_key(model_id)
    put_bytes(s3, bucket, artifact, b"weights", "application/octet-stream")
    body: dict[str, Any] = {"model_id": model_id}
    if members:
        body["ensemble"] = {"members": [{"model_id": m} for m in members]}
    put_bytes(s3, bucket, manifest, json.dumps(body).encode(), "application/json")
    architecture = "score_ensemble" if members else "efficientnet_lite0"
    row = make_model(
        model_id,
        task="classify",
        architecture=architecture,
        artifact_key=artifact,
        manifest_key=manifest,
    )
    add_rows(sessions, [row])
    return model_id


def test_a_model_in_use_is_refused_and_a_free_one_goes_with_its_objects(
    api: TestClient, sessions: sessionmaker[Session], s3: Minio, settings: CommonSettings
) -> None:
    assigned, member, free = (stored_model(sessions, s3) for _ in range(3))
    ensemble = stored_model(sessions, s3, members=(member,))
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    with sessions.begin() as session:
        session.add(ModelAssignmentRow(scope=camera, shadow_model_id=assigned, updated_by="test"))

    refused = api.delete(f"/api/v1/models/{assigned}")
    assert refused.status_code == 409, refused.text
    assert f"assignments {camera}" in refused.json()["detail"]
    in_ensemble = api.delete(f"/api/v1/models/{member}")
    assert in_ensemble.status_code == 409
    assert f"ensembles {ensemble}" in in_ensemble.json()["detail"]
    assert api.get(f"/api/v1/models/{assigned}").status_code == 200

    assert api.delete(f"/api/v1/models/{free}", params={"reason": "superseded"}).status_code == 204
    assert api.get(f"/api/v1/models/{free}").status_code == 404
    assert not list(list_keys(s3, settings.s3.models_bucket, f"models/{free}/"))
    [record] = audit(api, target=free)
    assert (record["kind"], record["reason"]) == ("model", "superseded")
    # The ensemble first, then its member.
    assert api.delete(f"/api/v1/models/{ensemble}").status_code == 204
    assert api.delete(f"/api/v1/models/{member}").status_code == 204
    assert api.delete(f"/api/v1/models/{member}").status_code == 404


def test_a_cameras_retention_is_capped_by_the_global_maximum(api: TestClient) -> None:
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    body = {"id": camera, "name": "gate", "source": "rtsp://10.0.0.7/main", "retention_days": 7}
    created = api.post("/api/v1/cameras", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["retention_days"] == 7
    too_long = api.patch(f"/api/v1/cameras/{camera}", json={"retention_days": 31})
    assert too_long.status_code == 422
    [error] = too_long.json()["errors"]
    assert error["field"] == "body.retention_days"
    assert "VIGIL_API_RETENTION_MAX_DAYS" in error["message"]
    cleared = api.patch(f"/api/v1/cameras/{camera}", json={"retention_days": None})
    assert cleared.status_code == 200 and cleared.json()["retention_days"] is None
