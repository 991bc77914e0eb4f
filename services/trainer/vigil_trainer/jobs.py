"""Runs one job end to end and keeps its row in PostgreSQL current (status, progress, error)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import torch
from minio import Minio
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Job
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import JobStatus, OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_trainer.one_class import DatasetError, fit_one_class
from vigil_trainer.registry import register

log = logging.getLogger("vigil_trainer")


class JobNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class TrainerContext:
    """Clients built once per worker process and handed to every job."""

    s3: Minio
    s3_settings: S3Settings
    sessions: sessionmaker[Session]
    device: str
    batch_size: int


def _update(sessions: sessionmaker[Session], job_id: uuid.UUID, **values: Any) -> None:
    with sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(f"job {job_id} does not exist")
        for name, value in values.items():
            setattr(job, name, value)


def run_job(ctx: TrainerContext, job_id: uuid.UUID) -> str | None:
    """Run the job; returns the model id, or None when the job failed on its input."""
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobNotFoundError(f"job {job_id} does not exist")
        raw_spec = job.spec
    _update(ctx.sessions, job_id, status=JobStatus.RUNNING, started_at=utc_now(), error=None)
    try:
        spec = OneClassSpec.model_validate(raw_spec)
        fitted = fit_one_class(
            ctx.s3,
            bucket=ctx.s3_settings.datasets_bucket,
            spec=spec,
            device=ctx.device,
            batch_size=ctx.batch_size,
            progress=lambda p: _update(ctx.sessions, job_id, progress=p),
        )
        manifest = register(
            s3=ctx.s3,
            bucket=ctx.s3_settings.models_bucket,
            sessions=ctx.sessions,
            job_id=job_id,
            spec=spec,
            fitted=fitted,
        )
    except (ValidationError, DatasetError) as exc:
        log.warning("job failed on its input", extra={"error": str(exc)})
        _update(
            ctx.sessions, job_id, status=JobStatus.FAILED, error=str(exc), finished_at=utc_now()
        )
        return None
    except Exception as exc:
        _update(
            ctx.sessions,
            job_id,
            status=JobStatus.FAILED,
            error=f"internal error: {exc}",
            finished_at=utc_now(),
        )
        raise
    _update(
        ctx.sessions,
        job_id,
        status=JobStatus.SUCCEEDED,
        model_id=manifest.model_id,
        finished_at=utc_now(),
        progress={"stage": "done"},
    )
    return manifest.model_id


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
