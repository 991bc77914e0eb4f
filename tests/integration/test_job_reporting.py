"""A running job writes progress at most once a second and reads its cancel flag as rarely."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Job, JobLog
from vigil_shared.schemas.jobs import JobStatus
from vigil_trainer.reporting import JobReporter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def job_id(sessions: sessionmaker[Session]) -> uuid.UUID:
    with sessions.begin() as session:
        job = Job(name="r", task="classify", spec={}, status=JobStatus.RUNNING)
        session.add(job)
        session.flush()
        return job.id


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
        assert job is not None and job.progress == {"stage": "registering"}


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
