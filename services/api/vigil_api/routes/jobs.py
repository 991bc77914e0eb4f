"""Fine-tuning jobs: validated specs in, rows in PostgreSQL, tasks on the Celery queue; listing,
progress, cancellation and logs.

A spec is checked twice before it is queued: its shape (``JobSpec``, a 422 naming each field)
and its dataset, which must exist; a spec without a dataset version is pinned to the latest one
at submission, so the job trains on exactly what was there when it was asked for.

Cancelling a queued job is immediate (``cancelled``, and its Celery task revoked so no worker
starts it); a running job becomes ``cancelling`` and the trainer, which checks between steps,
stops it and marks it ``cancelled``. Jobs read any camera's datasets and make fleet-wide models:
camera-scoped keys may not use these routes."""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from celery import Celery
from fastapi import APIRouter, Body, HTTPException, Query, status
from kombu.exceptions import OperationalError as QueueError
from minio import Minio
from minio.error import S3Error
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError
from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from vigil_api.core import problems
from vigil_api.core.auth import FleetOperatorDep, FleetViewerDep
from vigil_api.core.deps import Clients, ClientsDep, SessionDep
from vigil_api.domain.job_watch import enqueue, worker_view
from vigil_shared.datasets import DatasetError, DatasetRef, load_manifest
from vigil_shared.db.models import Job, JobLog, Model
from vigil_shared.schemas.inputs import RowId, SafeName
from vigil_shared.schemas.jobs import ClassifySpec, JobSpec, JobStatus
from vigil_shared.schemas.manifests import ModelManifest, ensemble_problem, site_backbone_problem
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.storage import StorageError, get_bytes
from vigil_shared.weights_store import missing_weights

log = logging.getLogger("vigil_api")
FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


SPEC_EXAMPLE: dict[str, JsonValue] = {
    "name": "walkway",
    "task": "one_class",
    "dataset": {"name": "walkway"},
}
JOB_EXAMPLE: dict[str, JsonValue] = {
    "id": "6f1c2a4e-3b7d-4f8e-9a0b-1c2d3e4f5a6b",
    "name": "walkway",
    "task": "one_class",
    "status": "running",
    "spec": SPEC_EXAMPLE | {"dataset": {"name": "walkway", "version": "9f2c" + "0" * 60}},
    "progress": {"stage": "fit", "epoch": 3, "epochs": 10, "metrics": {"val_auroc": 0.91}},
    "error": None,
    "model_id": None,
    "created_by": "night-shift console",
    "created_at": "2026-11-28T12:00:00Z",
    "started_at": "2026-11-28T12:00:02Z",
    "finished_at": None,
}


class JobOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={"examples": [JOB_EXAMPLE]},
    )

    id: uuid.UUID
    name: str
    task: str
    status: JobStatus
    spec: dict[str, Any]
    progress: dict[str, Any] = Field(description="Live progress and metrics from the trainer.")
    error: str | None
    model_id: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None = Field(default=None, description="The trainer running it, or last.")
    heartbeat_at: datetime | None = Field(default=None, description="Its worker's last beat.")
    worker_lost: bool = Field(
        default=False,
        description="Held by a worker that stopped beating (see docs/operations.md): it is "
        "queued again or failed within VIGIL_API_JOB_SWEEP_INTERVAL_S.",
    )
    worker_losses: int = Field(default=0, description="Times its worker was lost.")


def job_out(job: Job, *, lost_after_s: float) -> JobOut:
    """The job as shown, with what its heartbeat says about its worker."""
    view = worker_view(job, lost_after_s=lost_after_s)
    return JobOut.model_validate(job).model_copy(update=view)


class JobPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [JOB_EXAMPLE], "next_cursor": None}]}
    )

    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as ``cursor`` for the next page; null: end.")


class LogLine(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    level: str
    message: str


class LogPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 41,
                            "at": "2026-11-28T12:01:00Z",
                            "level": "info",
                            "message": "epoch 3/10: val_auroc 0.91",
                        }
                    ],
                    "next_after": 41,
                }
            ]
        }
    )

    items: list[LogLine]
    next_after: int | None = Field(
        description="Pass as ``after`` to read on (unchanged while no new line was written)."
    )


class QueueUnavailableError(RuntimeError):
    pass


class NotCancellableError(RuntimeError):
    pass


def pin_dataset(*, s3: Minio, bucket: str, spec: JobSpec) -> JobSpec:
    """The spec with its dataset's version resolved; ``DatasetError`` if it does not exist."""
    manifest = load_manifest(s3, bucket, spec.dataset)
    pinned = DatasetRef(name=spec.dataset.name, version=manifest.version)
    return spec.model_copy(update={"dataset": pinned})


def check_registry_fusion(*, session: Session, s3: Minio, bucket: str, spec: JobSpec) -> None:
    """A ``registry_models`` fusion must name registry models that can be averaged as asked
    (a 422 at ``body.fusion.model_ids`` otherwise); the trainer checks again when it starts."""
    if not isinstance(spec, ClassifySpec) or spec.fusion is None:
        return
    if spec.fusion.kind != "registry_models":
        return
    location = ("body", "fusion", "model_ids")
    manifests = [
        registry_manifest(session=session, s3=s3, bucket=bucket, model_id=m, location=location)
        for m in spec.fusion.model_ids
    ]
    problem = ensemble_problem(spec.fusion.method, manifests)
    if problem is not None:
        raise problems.invalid_field(location, problem)


def check_backbone(*, session: Session, s3: Minio, bucket: str, spec: JobSpec) -> None:
    """A one_class ``backbone_model_id`` must name a fine-tuned Lite0 classifier (a 422 at
    ``body.backbone_model_id`` otherwise); the trainer checks again when it starts."""
    if not isinstance(spec, OneClassSpec) or spec.backbone_model_id is None:
        return
    location = ("body", "backbone_model_id")
    manifest = registry_manifest(
        session=session, s3=s3, bucket=bucket, model_id=spec.backbone_model_id, location=location
    )
    problem = site_backbone_problem(manifest)
    if problem is not None:
        raise problems.invalid_field(location, problem)


def check_weights(*, s3: Minio, bucket: str, spec: JobSpec, allow_download: bool) -> None:
    """A job whose pretrained weights the trainer cannot find is refused now (422 saying how
    to import them) rather than accepted and failed at its first step."""
    problem = missing_weights(s3, bucket=bucket, spec=spec, allow_download=allow_download)
    if problem is not None:
        field = "weights_sha256" if getattr(spec, "weights_sha256", None) else "architecture"
        raise problems.invalid_field(("body", field), problem)


def registry_manifest(
    *, session: Session, s3: Minio, bucket: str, model_id: str, location: tuple[str, ...]
) -> ModelManifest:
    """A registry model's manifest, or a 422 at ``location`` saying why there is none."""
    model = session.get(Model, model_id)
    if model is None:
        raise problems.invalid_field(
            location, f"model {model_id} is not in the registry (GET /api/v1/models lists them)"
        )
    try:
        return ModelManifest.model_validate_json(get_bytes(s3, bucket, model.manifest_key))
    except (S3Error, StorageError, ValidationError) as exc:
        raise problems.invalid_field(
            location, f"model {model_id}: its manifest cannot be read ({exc})"
        ) from exc


def create_job(*, session: Session, celery: Celery, spec: JobSpec, actor: str) -> Job:
    """Store the job, then queue it; if the queue is down the job is marked failed, not lost."""
    job = Job(
        name=spec.name,
        task=spec.task,
        spec=spec.model_dump(mode="json"),
        status=JobStatus.QUEUED,
        progress={},
        created_by=actor,
    )
    session.add(job)
    session.commit()
    try:
        enqueue(celery, job.id)
    except QueueError as exc:
        job.status = JobStatus.FAILED
        job.error = f"the job queue is unavailable: {exc}"
        session.commit()
        raise QueueUnavailableError(job.error) from exc
    return job


def cancel_job(*, session: Session, celery: Celery, job_id: uuid.UUID) -> Job | None:
    """Queued → cancelled (and revoked); running → cancelling. One conditional UPDATE each, so
    a job the trainer starts at this moment is never both running and cancelled."""
    now_cancelled = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, finished_at=datetime.now().astimezone())
    )
    if now_cancelled.rowcount:  # type: ignore[attr-defined]
        session.commit()
        celery.control.revoke(str(job_id))
    else:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(status=JobStatus.CANCELLING)
        )
        session.commit()
    job = session.get(Job, job_id)
    if job is None:
        return None
    session.refresh(job)
    if job.status in FINISHED - {JobStatus.CANCELLED}:
        raise NotCancellableError(f"job {job_id} already {job.status}; nothing to cancel")
    return job


def _encode(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_at.isoformat()}|{job.id}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(job_id)
    except ValueError as exc:
        raise problems.invalid_field(
            ("query", "cursor"), "not a cursor this API returned; start again without it"
        ) from exc


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    responses=problems.responses(422, 503),
)
def submit_job(
    spec: Annotated[JobSpec, Body(openapi_examples={"one_class": {"value": SPEC_EXAMPLE}})],
    session: SessionDep,
    clients: ClientsDep,
    principal: FleetOperatorDep,
) -> JobOut:
    """Queue a fine-tuning job; its dataset must exist (422 at ``body.dataset``), a fusion's
    models too (``body.fusion.model_ids``), and its pretrained weights (``body.architecture``)."""
    job = queue_job(session=session, clients=clients, spec=spec, actor=principal.name)
    return job_out(job, lost_after_s=clients.settings.job_worker_lost_after_s)


def queue_job(*, session: Session, clients: Clients, spec: JobSpec, actor: str) -> Job:
    """Check a spec against what exists and queue it (as a retrain does too): 422s, or a 503."""
    s3 = clients.settings.common.s3
    try:
        pinned = pin_dataset(s3=clients.s3, bucket=s3.datasets_bucket, spec=spec)
    except DatasetError as exc:
        raise problems.invalid_field(("body", "dataset"), str(exc)) from exc
    check_registry_fusion(session=session, s3=clients.s3, bucket=s3.models_bucket, spec=spec)
    check_backbone(session=session, s3=clients.s3, bucket=s3.models_bucket, spec=spec)
    allow_download = clients.settings.trainer_allows_weight_download
    check_weights(s3=clients.s3, bucket=s3.models_bucket, spec=spec, allow_download=allow_download)
    try:
        return create_job(session=session, celery=clients.celery, spec=pinned, actor=actor)
    except QueueUnavailableError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc


@router.get("", response_model=JobPage, responses=problems.responses(422))
def get_jobs(
    session: SessionDep,
    clients: ClientsDep,
    _: FleetViewerDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    task: Annotated[Literal["one_class", "classify"] | None, Query()] = None,
    name: Annotated[SafeName | None, Query(description="Exact job name.")] = None,
    created_after: AwareDatetime | None = None,
    created_before: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200, pattern=r"^[A-Za-z0-9_=-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JobPage:
    """Newest first, filtered; page with ``next_cursor``."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    if status_filter is not None:
        query = query.where(Job.status == status_filter)
    if task is not None:
        query = query.where(Job.task == task)
    if name is not None:
        query = query.where(Job.name == name)
    if created_after is not None:
        query = query.where(Job.created_at >= created_after)
    if created_before is not None:
        query = query.where(Job.created_at < created_before)
    if cursor is not None:
        query = query.where(tuple_(Job.created_at, Job.id) < tuple_(*_decode(cursor)))
    rows = list(session.scalars(query))
    page = rows[:limit]
    more = len(rows) > limit
    lost_after_s = clients.settings.job_worker_lost_after_s
    return JobPage(
        items=[job_out(j, lost_after_s=lost_after_s) for j in page],
        next_cursor=_encode(page[-1]) if more else None,
    )


def _job(session: Session, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} does not exist")
    return job


@router.get("/{job_id}", response_model=JobOut, responses=problems.responses(404))
def get_job(
    job_id: uuid.UUID, session: SessionDep, clients: ClientsDep, _: FleetViewerDep
) -> JobOut:
    return job_out(_job(session, job_id), lost_after_s=clients.settings.job_worker_lost_after_s)


@router.post("/{job_id}/cancel", response_model=JobOut, responses=problems.responses(404, 409))
def post_cancel(
    job_id: uuid.UUID, session: SessionDep, clients: ClientsDep, _: FleetOperatorDep
) -> JobOut:
    """Queued: cancelled now. Running: ``cancelling`` until the trainer stops it (or, if its
    worker is lost, until the lost-worker sweep ends it)."""
    try:
        job = cancel_job(session=session, celery=clients.celery, job_id=job_id)
    except NotCancellableError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"job {job_id} does not exist")
    return job_out(job, lost_after_s=clients.settings.job_worker_lost_after_s)


@router.get("/{job_id}/logs", response_model=LogPage, responses=problems.responses(404))
def get_logs(
    job_id: uuid.UUID,
    session: SessionDep,
    _: FleetViewerDep,
    after: Annotated[RowId | None, Query(description="Lines after this id.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> LogPage:
    """The job's log, oldest first, as the trainer wrote it."""
    _job(session, job_id)
    query = select(JobLog).where(JobLog.job_id == job_id).order_by(JobLog.id).limit(limit)
    if after is not None:
        query = query.where(JobLog.id > after)
    lines = list(session.scalars(query))
    next_after = lines[-1].id if lines else after
    return LogPage(items=[LogLine.model_validate(line) for line in lines], next_after=next_after)
