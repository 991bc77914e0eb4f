"""Runs one job end to end and keeps its row in PostgreSQL current (status, progress, logs).

The spec is validated again, then its kind (``task``) is run through ``kinds.run_kind``; this
module knows no kind. A kind's ``JobInputError`` fails the job with its message.

A job found ``cancelled`` before it starts is skipped; one cancelled while running stops at its
next step (``JobCancelled``) and ends ``cancelled``. While a job runs, a ``Heartbeat`` thread
beats into its row every ``heartbeat_s``; a job whose beats stop is taken for lost by the API
(``worker_lost``), which re-queues it. A job delivered again after its worker died finds its row
``running`` (or ``queued`` again) and its checkpoint in S3, and carries on from there; one whose
holder still beats (within ``lease_s``) waits instead of running twice.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.datasets import DatasetError
from vigil_shared.db.models import Job
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import JobSpec, JobStatus
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.catalog import UnknownArchitectureError
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.context import TrainerContext
from vigil_trainer.errors import JobInputError
from vigil_trainer.kinds import run_kind
from vigil_trainer.reporting import Heartbeat, JobReporter

log = logging.getLogger("vigil_trainer")
SPEC = TypeAdapter[JobSpec](JobSpec)
# Failures caused by the job's input: the message is the user's to act on, no traceback needed.
INPUT_ERRORS = (
    ValidationError,
    DatasetError,
    WeightsError,
    UnknownArchitectureError,
    JobInputError,
)


class JobNotFoundError(LookupError):
    pass


def _update(sessions: sessionmaker[Session], job_id: uuid.UUID, **values: Any) -> None:
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(f"job {job_id} does not exist")
        for name, value in values.items():
            setattr(job, name, value)


class JobBusyError(RuntimeError):
    """Another live worker holds the job (its heartbeat is fresh): try again later."""


WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


def _held_elsewhere(job: Job, lease_s: float) -> bool:
    """Whether another worker wrote this running job's progress within the lease."""
    holder = job.progress.get("worker")
    beat = job.progress.get("heartbeat")
    if job.status != JobStatus.RUNNING or holder in (None, WORKER_ID) or beat is None:
        return False
    return (utc_now() - datetime.fromisoformat(beat)).total_seconds() < lease_s


def _start(
    sessions: sessionmaker[Session], job_id: uuid.UUID, *, lease_s: float
) -> dict[str, Any] | None:
    """Mark the job running and return its spec; None when it was cancelled while queued or
    has finished (a duplicate delivery). ``JobBusyError`` when a live worker is running it."""
    with sessions.begin() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise JobNotFoundError(f"job {job_id} does not exist")
        if job.status in {JobStatus.CANCELLED, JobStatus.CANCELLING}:
            job.status = JobStatus.CANCELLED
            job.finished_at = job.finished_at or utc_now()
            return None
        if job.status in {JobStatus.SUCCEEDED, JobStatus.FAILED}:
            return None
        if _held_elsewhere(job, lease_s):
            raise JobBusyError(f"job {job_id} is running on {job.progress.get('worker')}")
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or utc_now()
        job.error = None
        job.progress = {**job.progress, "worker": WORKER_ID, "heartbeat": utc_now().isoformat()}
        return dict(job.spec)


def run_job(ctx: TrainerContext, job_id: uuid.UUID) -> str | None:
    """Run the job; returns the model id, or None when it failed, was cancelled or skipped."""
    raw_spec = _start(ctx.sessions, job_id, lease_s=ctx.lease_s)
    if raw_spec is None:
        log.info("job skipped: cancelled or already finished")
        return None
    reporter = JobReporter(ctx.sessions, job_id, interval_s=ctx.progress_interval_s)
    reporter.context = {"worker": WORKER_ID}
    with Heartbeat(ctx.sessions, job_id, worker=WORKER_ID, interval_s=ctx.heartbeat_s):
        return _run(ctx, job_id, raw_spec, reporter)


def _run(
    ctx: TrainerContext, job_id: uuid.UUID, raw_spec: dict[str, Any], reporter: JobReporter
) -> str | None:
    try:
        spec = SPEC.validate_python(raw_spec)
        reporter.log("info", f"{spec.task} job {spec.name!r} started on {ctx.device}")
        manifest = run_kind(ctx=ctx.for_job(job_id, reporter), spec=spec)
    except JobCancelled:
        reporter.log("info", "cancelled by the operator")
        _update(ctx.sessions, job_id, status=JobStatus.CANCELLED, finished_at=utc_now())
        return None
    except INPUT_ERRORS as exc:
        reporter.log("error", str(exc))
        _fail(ctx.sessions, job_id, str(exc))
        return None
    except Exception as exc:
        reporter.log("error", f"internal error: {exc}")
        _fail(ctx.sessions, job_id, f"internal error: {exc}")
        raise
    reporter.log("info", f"registered candidate model {manifest.model_id}")
    _update(
        ctx.sessions,
        job_id,
        status=JobStatus.SUCCEEDED,
        model_id=manifest.model_id,
        finished_at=utc_now(),
        progress={"stage": "done", "metrics": manifest.metrics},
    )
    return manifest.model_id


def _fail(sessions: sessionmaker[Session], job_id: uuid.UUID, error: str) -> None:
    _update(sessions, job_id, status=JobStatus.FAILED, error=error, finished_at=utc_now())
