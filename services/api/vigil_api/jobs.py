"""Fine-tuning jobs: validated specs in, rows in PostgreSQL, tasks on the Celery queue."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any

from celery import Celery
from fastapi import APIRouter, HTTPException, Query, status
from kombu.exceptions import OperationalError as QueueError
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_api.auth import FleetOperatorDep, FleetViewerDep
from vigil_api.deps import ClientsDep, SessionDep
from vigil_shared.db.models import Job
from vigil_shared.schemas.jobs import JobSpec, JobStatus

log = logging.getLogger("vigil_api")
RUN_JOB_TASK = "vigil.trainer.run_job"  # the trainer's task, sent by name: no trainer import
TASK_QUEUE = "vigil.training"

# Jobs read datasets of any camera and produce fleet-wide models: camera-scoped keys stay out.
router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: uuid.UUID
    name: str
    task: str
    status: JobStatus
    spec: dict[str, Any]
    progress: dict[str, Any]
    error: str | None
    model_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class QueueUnavailableError(RuntimeError):
    pass


def create_job(*, session: Session, celery: Celery, spec: JobSpec) -> Job:
    """Store the job, then queue it; if the queue is down the job is marked failed, not lost."""
    job = Job(
        name=spec.name,
        task=spec.task,
        spec=spec.model_dump(mode="json"),
        status=JobStatus.QUEUED,
        progress={},
    )
    session.add(job)
    session.commit()
    try:
        celery.send_task(
            RUN_JOB_TASK, kwargs={"job_id": str(job.id)}, queue=TASK_QUEUE, task_id=str(job.id)
        )
    except QueueError as exc:
        job.status = JobStatus.FAILED
        job.error = f"the job queue is unavailable: {exc}"
        session.commit()
        raise QueueUnavailableError(job.error) from exc
    return job


def list_jobs(*, session: Session, status_filter: JobStatus | None, limit: int) -> list[Job]:
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status_filter is not None:
        query = query.where(Job.status == status_filter)
    return list(session.scalars(query))


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def submit_job(spec: JobSpec, session: SessionDep, clients: ClientsDep, _: FleetOperatorDep) -> Job:
    try:
        return create_job(session=session, celery=clients.celery, spec=spec)
    except QueueUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


@router.get("", response_model=list[JobOut])
def get_jobs(
    session: SessionDep,
    _: FleetViewerDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Job]:
    return list_jobs(session=session, status_filter=status_filter, limit=limit)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, session: SessionDep, _: FleetViewerDep) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} does not exist")
    return job
