"""Jobs: specs refused field by field, datasets pinned before queueing, listing with filters
and cursors, cancellation of queued and running jobs, logs read by cursor, and jobs whose
worker stopped beating: shown lost, queued again, then failed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import good_entries, zip_bytes
from tests.integration.conftest import ADMIN_KEY, IssueKey, bearer
from vigil_api.core.settings import ApiSettings
from vigil_api.domain.job_watch import JobWatch
from vigil_api.main import create_app
from vigil_shared.db.models import Job, JobLog
from vigil_shared.schemas.frames import utc_now


@pytest.fixture
def dataset(api: TestClient) -> Iterator[tuple[str, str]]:
    """A stored dataset version: (name, version)."""
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    files = {"archive": ("d.zip", zip_bytes(good_entries()), "application/zip")}
    response = api.post(f"/api/v1/datasets/{name}/versions", files=files)
    assert response.status_code == 201, response.text
    yield name, response.json()["version"]


def submit(api: TestClient, dataset: str, name: str = "walkway") -> dict[str, object]:
    response = api.post("/api/v1/jobs", json={"name": name, "dataset": {"name": dataset}})
    assert response.status_code == 202, response.text
    job: dict[str, object] = response.json()
    return job


def set_status(sessions: sessionmaker[Session], job_id: object, status: str) -> None:
    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(str(job_id))).values(status=status))


def test_a_job_is_queued_with_its_dataset_version_pinned(
    api: TestClient, dataset: tuple[str, str]
) -> None:
    name, version = dataset
    job = submit(api, name)
    assert job["status"] == "queued" and job["created_by"] == "env-admin"
    assert job["spec"] == api.get(f"/api/v1/jobs/{job['id']}").json()["spec"]
    assert isinstance(job["spec"], dict)
    assert job["spec"]["dataset"] == {"name": name, "version": version}


def test_specs_are_refused_field_by_field(api: TestClient) -> None:
    bad = {"name": "", "dataset": {"name": "Bad Name"}, "image_size": 100}
    response = api.post("/api/v1/jobs", json=bad)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"body.one_class.name", "body.one_class.dataset.name"} <= fields
    assert "body.one_class.image_size" in fields
    unknown_task = api.post("/api/v1/jobs", json={"name": "x", "task": "regress", "dataset": {}})
    assert unknown_task.status_code == 422
    assert "task must be 'one_class' or 'classify'" in unknown_task.json()["detail"]
    missing = api.post("/api/v1/jobs", json={"name": "x", "dataset": {"name": "no-such-data"}})
    assert missing.status_code == 422
    (error,) = missing.json()["errors"]
    assert error["field"] == "body.dataset" and "does not exist" in error["message"]


def test_listing_filters_and_pages(api: TestClient, dataset: tuple[str, str]) -> None:
    label = f"list-{uuid.uuid4().hex[:6]}"
    ids = [submit(api, dataset[0], name=label)["id"] for _ in range(3)]
    first = api.get("/api/v1/jobs", params={"name": label, "limit": 2}).json()
    assert [j["id"] for j in first["items"]] == ids[::-1][:2]
    rest = api.get(
        "/api/v1/jobs", params={"name": label, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [j["id"] for j in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    api.post(f"/api/v1/jobs/{ids[0]}/cancel")
    cancelled = api.get("/api/v1/jobs", params={"name": label, "status": "cancelled"}).json()
    assert [j["id"] for j in cancelled["items"]] == [ids[0]]
    other_task = api.get("/api/v1/jobs", params={"name": label, "task": "classify"}).json()
    assert other_task["items"] == []
    bad = api.get("/api/v1/jobs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"


def test_cancel_queued_running_and_finished_jobs(
    api: TestClient, dataset: tuple[str, str], sessions: sessionmaker[Session]
) -> None:
    queued = submit(api, dataset[0])
    response = api.post(f"/api/v1/jobs/{queued['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert api.post(f"/api/v1/jobs/{queued['id']}/cancel").json()["status"] == "cancelled"

    running = submit(api, dataset[0])
    set_status(sessions, running["id"], "running")
    assert api.post(f"/api/v1/jobs/{running['id']}/cancel").json()["status"] == "cancelling"

    done = submit(api, dataset[0])
    set_status(sessions, done["id"], "succeeded")
    refused = api.post(f"/api/v1/jobs/{done['id']}/cancel")
    assert refused.status_code == 409 and "already succeeded" in refused.json()["detail"]
    assert api.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel").status_code == 404


def test_logs_are_read_by_cursor(
    api: TestClient, dataset: tuple[str, str], sessions: sessionmaker[Session]
) -> None:
    job = submit(api, dataset[0])
    job_id = uuid.UUID(str(job["id"]))
    with sessions.begin() as session:
        for n in range(5):
            session.add(JobLog(job_id=job_id, level="info", message=f"epoch {n}"))
    first = api.get(f"/api/v1/jobs/{job_id}/logs", params={"limit": 3}).json()
    assert [line["message"] for line in first["items"]] == ["epoch 0", "epoch 1", "epoch 2"]
    rest = api.get(f"/api/v1/jobs/{job_id}/logs", params={"after": first["next_after"]}).json()
    assert [line["message"] for line in rest["items"]] == ["epoch 3", "epoch 4"]
    idle = api.get(f"/api/v1/jobs/{job_id}/logs", params={"after": rest["next_after"]}).json()
    assert idle == {"items": [], "next_after": rest["next_after"]}
    assert api.get(f"/api/v1/jobs/{uuid.uuid4()}/logs").status_code == 404


def test_camera_scoped_keys_cannot_use_jobs(api: TestClient, issue_key: IssueKey) -> None:
    key = bearer(issue_key("operator", camera_ids=["cam-1"]))
    assert api.get("/api/v1/jobs", headers=key).status_code == 403
    assert api.post("/api/v1/jobs", json={}, headers=key).status_code == 403


def hold(
    sessions: sessionmaker[Session],
    job_id: object,
    status: str,
    beat_age_s: float,
    *,
    offset: bool = True,
) -> None:
    """The job as a trainer left it: held by ``gone:1``, whose last beat is ``beat_age_s`` old
    (written without its UTC offset when not ``offset``)."""
    beat = utc_now() - timedelta(seconds=beat_age_s)
    written = beat.isoformat() if offset else beat.replace(tzinfo=None).isoformat()
    progress = {"worker": "gone:1", "heartbeat": written, "stage": "fit"}
    with sessions.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == uuid.UUID(str(job_id)))
            .values(status=status, started_at=beat, progress=progress, finished_at=None)
        )


def test_a_job_whose_worker_stopped_beating_is_shown_lost_then_queued_again_then_failed(
    dataset: tuple[str, str], sessions: sessionmaker[Session]
) -> None:
    settings = ApiSettings(job_sweep_interval_s=600)  # the test sweeps by itself
    with TestClient(create_app(settings), headers=bearer(ADMIN_KEY)) as api:
        clients = api.app.state.clients  # type: ignore[attr-defined]
        watch = JobWatch(sessions=sessions, celery=clients.celery, lost_after_s=60, retries=1)
        alive, lost, cancelling, naive = (submit(api, dataset[0]) for _ in range(4))
        hold(sessions, alive["id"], "running", beat_age_s=5)
        hold(sessions, lost["id"], "running", beat_age_s=90)
        hold(sessions, cancelling["id"], "cancelling", beat_age_s=90)
        hold(sessions, naive["id"], "running", beat_age_s=90, offset=False)

        def shown(job: dict[str, object]) -> dict[str, Any]:
            body: dict[str, Any] = api.get(f"/api/v1/jobs/{job['id']}").json()
            return body

        assert shown(alive)["worker_lost"] is False and shown(alive)["worker"] == "gone:1"
        seen = shown(lost)
        assert seen["worker_lost"] is True and seen["status"] == "running"
        assert seen["heartbeat_at"] is not None and seen["worker"] == "gone:1"

        def swept() -> dict[str, str]:
            ids = {str(j["id"]) for j in (alive, lost, cancelling, naive)}
            return {str(o.job_id): o.action for o in watch.sweep() if str(o.job_id) in ids}

        assert swept() == {
            lost["id"]: "queued",
            cancelling["id"]: "cancelled",
            naive["id"]: "queued",  # a beat without an offset is UTC, not a crash
        }
        requeued = shown(lost)
        assert requeued["status"] == "queued" and requeued["worker_losses"] == 1
        assert requeued["error"].startswith("worker lost: no heartbeat from gone:1 since")
        assert "queued again (1 of 1)" in requeued["error"] and not requeued["worker_lost"]
        assert shown(cancelling)["status"] == "cancelled"
        logs = api.get(f"/api/v1/jobs/{lost['id']}/logs").json()["items"]
        assert [line["level"] for line in logs] == ["error"] and "worker lost" in logs[0]["message"]

        hold(sessions, lost["id"], "running", beat_age_s=90)  # its next worker died too
        assert swept() == {lost["id"]: "failed"}
        failed = shown(lost)
        assert failed["status"] == "failed" and failed["worker_losses"] == 2
        assert "failed after 2 lost workers" in failed["error"]
        assert failed["finished_at"] is not None and shown(alive)["status"] == "running"
