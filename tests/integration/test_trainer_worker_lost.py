"""A trainer killed mid-job (SIGKILL, as a dead machine) is reported by the API within the
deadline, and its job is queued again and finished by the next worker."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from minio import Minio

from tests.factories import scene_jpeg
from tests.integration.conftest import ADMIN_KEY, StartService, bearer
from tests.support import ServiceProcess, wait_until
from vigil_api.core.settings import ApiSettings
from vigil_api.main import create_app
from vigil_shared.datasets import NewImage, write_dataset
from vigil_shared.settings import CommonSettings

pytestmark = [pytest.mark.slow]
LOST_AFTER_S = 3.0
SWEEP_S = 0.5
TRAINER = {"VIGIL_TRAINER_HEARTBEAT_S": "0.5", "VIGIL_TRAINER_DEVICE": "cpu"}


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the Celery pool's children), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_machine(worker: ServiceProcess) -> None:
    """SIGKILL the worker and its pool processes at once: nothing of it runs clean-up."""
    for pid in [worker.process.pid, *descendants(worker.process.pid)]:
        with contextlib.suppress(ProcessLookupError):  # ended on its own meanwhile
            os.kill(pid, signal.SIGKILL)
    worker.process.wait(timeout=30)


@pytest.fixture
def api() -> Iterator[TestClient]:
    # The queue is this test's alone (the jobs table is emptied before every test): a task other
    # tests of the run left queued would be run first.
    settings = ApiSettings(
        job_worker_lost_after_s=LOST_AFTER_S,
        job_sweep_interval_s=SWEEP_S,
        job_retries_after_worker_lost=1,
    )
    with TestClient(create_app(settings), headers=bearer(ADMIN_KEY)) as client:
        client.app.state.clients.celery.control.purge()  # type: ignore[attr-defined]
        yield client


def test_a_killed_trainer_is_reported_lost_and_its_job_queued_again(
    api: TestClient, s3: Minio, settings: CommonSettings, start_service: StartService
) -> None:
    images = [
        NewImage(data=scene_jpeg(step), extension=".jpg", group=f"clip{step % 4}", sequence=step)
        for step in range(24)
    ]
    name = f"lost-{uuid.uuid4().hex[:8]}"
    bucket = settings.s3.datasets_bucket
    dataset = write_dataset(s3, bucket, name=name, images=images, source="import")
    spec = {
        "name": "killed",
        "dataset": {"name": dataset.name, "version": dataset.version},
        "image_size": 64,
        "appearance": {"bank_size": 64, "whiten_dim": 0},
        "motion": None,
    }
    response = api.post("/api/v1/jobs", json=spec)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    def job() -> dict[str, Any]:
        body: dict[str, Any] = api.get(f"/api/v1/jobs/{job_id}").json()
        return body

    def status_with(worker: ServiceProcess) -> str:
        worker.assert_running()
        return str(job()["status"])

    first = start_service("vigil_trainer", **TRAINER)
    wait_until(
        lambda: status_with(first) == "running",
        timeout_s=120,
        what="the first worker to start the job",
    )
    wait_until(lambda: job()["heartbeat_at"], timeout_s=10, what="a heartbeat")
    kill_machine(first)
    killed_at = time.monotonic()
    assert job()["status"] == "running", "the job ended before the worker was killed"

    seen = wait_until(
        lambda: (j := job())["worker_lost"] or (j["status"] == "queued" and j),
        timeout_s=LOST_AFTER_S + SWEEP_S + 10,
        what="the API to report the job's worker lost",
    )
    assert time.monotonic() - killed_at < LOST_AFTER_S + SWEEP_S + 10
    requeued = wait_until(
        lambda: (j := job())["status"] == "queued" and j,
        timeout_s=SWEEP_S + 10,
        what="the job to be queued again",
    )
    assert seen and requeued["worker_losses"] == 1
    assert requeued["error"].startswith("worker lost: no heartbeat from")

    second = start_service("vigil_trainer", **TRAINER)
    wait_until(
        lambda: status_with(second) in {"succeeded", "failed"},
        timeout_s=300,
        what="the second worker to finish the job",
    )
    done = job()
    assert done["status"] == "succeeded", done["error"]
    assert done["worker_losses"] == 1 and done["error"] is None
    logs = [line["message"] for line in api.get(f"/api/v1/jobs/{job_id}/logs").json()["items"]]
    assert any(m.startswith("worker lost: no heartbeat from") for m in logs)
    assert second.stop() == 0
