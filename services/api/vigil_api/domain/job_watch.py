"""Jobs whose trainer died: shown at once, then queued again or failed, within a minute.

The trainer beats into a running job's progress (``heartbeat``, ``worker``) every few seconds,
from a thread of its own, whatever the job is doing. A job ``running`` (or ``cancelling``)
whose last beat is older than ``VIGIL_API_JOB_WORKER_LOST_AFTER_S`` has lost its worker: the API
shows it at once (``worker_lost``), and ``JobWatch``, a thread of the API process, acts on it:

- ``cancelling`` becomes ``cancelled`` (no worker is left to stop it);
- ``running`` is queued again (the trainer resumes it from its last checkpoint) up to
  ``VIGIL_API_JOB_RETRIES_AFTER_WORKER_LOST`` times, then ``failed`` with ``worker lost``.

Each step is written to the job's log and counted in ``worker_losses``. Without it, a job whose
whole worker died stayed ``running`` until Redis handed its unacknowledged message to another
worker (``VIGIL_TRAINER_REDELIVERY_AFTER_S``, an hour); that late copy now finds the job done, or
waits for the live holder. Several API processes may sweep at once: each job is locked (``SKIP
LOCKED``) and changed only while it is still lost.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from celery import Celery
from kombu.exceptions import OperationalError as QueueError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Job, JobLog
from vigil_shared.queues import RUN_JOB_TASK, TASK_QUEUE  # sent by name: no trainer import
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import JobStatus

log = logging.getLogger("vigil_api.jobs")
HELD = (JobStatus.RUNNING, JobStatus.CANCELLING)
"""States in which a worker holds the job, and must beat."""


def enqueue(celery: Celery, job_id: uuid.UUID) -> None:
    """Send the job to the training queue (its Celery task id is the job id)."""
    celery.send_task(
        RUN_JOB_TASK, kwargs={"job_id": str(job_id)}, queue=TASK_QUEUE, task_id=str(job_id)
    )


def heartbeat(job: Job) -> datetime | None:
    """The last heartbeat its worker wrote into the job's progress, if any (UTC when the
    writer gave no offset)."""
    beat = job.progress.get("heartbeat") if isinstance(job.progress, dict) else None
    if not isinstance(beat, str):
        return None
    try:
        at = datetime.fromisoformat(beat)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def last_beat(job: Job) -> datetime | None:
    """The last sign of life of the job's worker: its heartbeat, else when the job started."""
    return heartbeat(job) or job.started_at


def worker_lost(job: Job, *, lost_after_s: float, now: datetime | None = None) -> bool:
    """A held job whose worker has not beaten for ``lost_after_s``."""
    beat = last_beat(job)
    if job.status not in HELD or beat is None:
        return False
    return ((now or utc_now()) - beat).total_seconds() > lost_after_s


def worker_view(job: Job, *, lost_after_s: float) -> dict[str, object]:
    """What the job's row says of its worker: ``worker``, ``heartbeat_at``, ``worker_lost``."""
    worker = job.progress.get("worker") if isinstance(job.progress, dict) else None
    return {
        "worker": worker if isinstance(worker, str) else None,
        "heartbeat_at": heartbeat(job),
        "worker_lost": worker_lost(job, lost_after_s=lost_after_s),
    }


@dataclass(frozen=True)
class LostJob:
    job_id: uuid.UUID
    action: Literal["queued", "failed", "cancelled"]


@dataclass(frozen=True)
class JobWatch:
    """Finds jobs whose worker was lost and queues them again or ends them (module docstring)."""

    sessions: sessionmaker[Session]
    celery: Celery
    lost_after_s: float
    retries: int

    def sweep(self) -> list[LostJob]:
        with self.sessions() as session:
            held = list(session.scalars(select(Job.id).where(Job.status.in_(HELD))))
        outcomes = (self._handle(job_id) for job_id in held)
        return [outcome for outcome in outcomes if outcome is not None]

    def run(self, stop: threading.Event, *, interval_s: float) -> None:
        """Sweep every ``interval_s`` until ``stop``; a failed sweep is logged and retried."""
        while not stop.wait(interval_s):
            try:
                self.sweep()
            except (SQLAlchemyError, QueueError) as exc:
                log.warning("lost-worker sweep failed; trying again", extra={"error": str(exc)})
            # Anything else is a bug, but a watchdog that died would hide every lost job after
            # it: logged with its traceback, and the next sweep runs.
            except Exception:
                log.exception("lost-worker sweep failed")

    def _handle(self, job_id: uuid.UUID) -> LostJob | None:
        with self.sessions.begin() as session:
            job = session.get(Job, job_id, with_for_update={"skip_locked": True})
            if job is None or not worker_lost(job, lost_after_s=self.lost_after_s):
                return None
            lost = self._lost(job)
            job.worker_losses += 1
            if job.status == JobStatus.CANCELLING:
                action: Literal["queued", "failed", "cancelled"] = "cancelled"
                job.status, job.finished_at = JobStatus.CANCELLED, utc_now()
                message = f"{lost}; cancelled, as asked"
            elif job.worker_losses > self.retries:
                action = "failed"
                job.status, job.finished_at = JobStatus.FAILED, utc_now()
                job.error = message = (
                    f"{lost}; failed after {job.worker_losses} lost workers: look at the "
                    "trainer's log (out of memory? a killed machine?) and submit it again"
                )
            else:
                action = "queued"
                job.status = JobStatus.QUEUED
                job.error = message = (
                    f"{lost}; queued again ({job.worker_losses} of {self.retries}), to resume "
                    "from its last checkpoint"
                )
                # Sent before the commit: if the queue is down, the job stays lost and the next
                # sweep tries again; a copy sent twice finds the job taken and waits.
                enqueue(self.celery, job.id)
            session.add(JobLog(job_id=job.id, level="error", message=message))
        log.error("job worker lost", extra={"job_id": str(job_id), "action": action})
        return LostJob(job_id=job_id, action=action)

    def _lost(self, job: Job) -> str:
        beat = last_beat(job)
        since = beat.isoformat(timespec="seconds") if beat is not None else "its start"
        worker = job.progress.get("worker") or "its worker"
        return (
            f"worker lost: no heartbeat from {worker} since {since} "
            f"(more than {self.lost_after_s:g} s)"
        )
