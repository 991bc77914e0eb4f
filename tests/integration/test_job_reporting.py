"""A running job writes progress at most once a second and reads its cancel flag as rarely; its
heartbeat beats on a thread of its own."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import add_job
from tests.support import wait_until
from vigil_shared.db.models import Job, JobLog
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import JobStatus
from vigil_trainer.jobs import WORKER_ID, JobBusyError, _start
from vigil_trainer.reporting import Heartbeat, JobReporter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def job_id(sessions: sessionmaker[Session]) -> uuid.UUID:
    return add_job(sessions, name="r", status=JobStatus.RUNNING)


def test_progress_is_throttled_and_nan_becomes_null(
    sessions: sessionmaker[Session], job_id: uuid.UUID
) -> None:
    clock = Clock()
    reporter = JobReporter(sessions, job_id, interval_s=1.0, clock=clock)
    for step in range(200):
        reporter.progress({"stage": "train", "step": step, "metrics": {"auroc": float("nan")}})
    assert reporter.writes == 1
    clock.now += 1.0
    reporter.progress({"stage": "train", "step": 200})
    reporter.progress({"stage": "registering"}, force=True)
    assert reporter.writes == 3
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.progress["stage"] == "registering"
        assert "step" not in job.progress and "heartbeat" in job.progress


def test_cancel_flag_is_read_at_most_once_per_interval(
    sessions: sessionmaker[Session], job_id: uuid.UUID
) -> None:
    clock = Clock()
    reporter = JobReporter(sessions, job_id, interval_s=1.0, clock=clock)
    assert reporter.should_stop() is False
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.status = JobStatus.CANCELLING
    assert reporter.should_stop() is False  # not read again within the interval
    clock.now += 1.0
    assert reporter.should_stop() is True
    reporter.log("info", "cancelled by the operator")
    with sessions() as session:
        messages = list(session.scalars(select(JobLog.message).where(JobLog.job_id == job_id)))
    assert messages == ["cancelled by the operator"]


def test_a_job_held_by_a_live_worker_is_not_run_twice(
    sessions: sessionmaker[Session], job_id: uuid.UUID
) -> None:
    fresh = {"worker": "other-host:1", "heartbeat": utc_now().isoformat()}
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.spec = {"name": "r", "task": "classify", "dataset": {"name": "d"}}
        job.progress = fresh
    with pytest.raises(JobBusyError, match="running on other-host:1"):
        _start(sessions, job_id, lease_s=60)
    stale = {**fresh, "heartbeat": (utc_now() - timedelta(seconds=120)).isoformat()}
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.progress = stale
    assert _start(sessions, job_id, lease_s=60) is not None  # the holder died: take over
    with sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.progress["worker"] == WORKER_ID


def test_the_heartbeat_beats_on_its_own_into_the_progress_and_lets_go_of_a_lost_job(
    sessions: sessionmaker[Session], job_id: uuid.UUID
) -> None:
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.progress = {"worker": WORKER_ID, "stage": "decoding", "heartbeat": "2026-01-01T00:00"}

    def progress() -> dict[str, object]:
        with sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None
            return dict(job.progress)

    with Heartbeat(sessions, job_id, worker=WORKER_ID, interval_s=0.05) as heart:
        # The job writes no progress (a long stage): the heartbeat goes on regardless.
        wait_until(lambda: heart.beats >= 3, timeout_s=5, what="three beats")
        beaten = progress()
        assert beaten["stage"] == "decoding", "a beat replaced the job's progress"
        assert str(beaten["heartbeat"]) > "2026-01-01T00:00" and beaten["worker"] == WORKER_ID
    beats = heart.beats
    time.sleep(0.2)
    assert heart.beats == beats, "the heartbeat outlived its job"

    with sessions.begin() as session:  # the API took the job for lost; another worker took it
        job = session.get(Job, job_id)
        assert job is not None
        job.progress = {"worker": "other-host:2", "heartbeat": "2026-01-01T00:00"}
    assert Heartbeat(sessions, job_id, worker=WORKER_ID, interval_s=1).beat() is False
    assert progress()["worker"] == "other-host:2"
