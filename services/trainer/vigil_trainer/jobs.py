"""Runs one job end to end and keeps its row in PostgreSQL current (status, progress, logs).

A job found ``cancelled`` before it starts is skipped; one cancelled while running stops at its
next step (``JobCancelled``) and ends ``cancelled``. A job redelivered after its worker died
finds its row ``running`` and its checkpoint in S3, and carries on from there.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from minio import Minio
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.datasets import DatasetError, load_manifest
from vigil_shared.db.models import Job
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import ClassifySpec, JobSpec, JobStatus, OneClassSpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import S3Settings
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.catalog import UnknownArchitectureError
from vigil_shared.vision.inferencer import read_manifest
from vigil_shared.vision.site_backbone import untouched_patch_stages
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.classify.evaluate import UnknownMetricError
from vigil_trainer.classify.job import ClassifyContext, run_classify
from vigil_trainer.classify.losses import UnknownLossError
from vigil_trainer.fusion import FusionError
from vigil_trainer.one_class import fit_one_class
from vigil_trainer.one_class.backbone import one_class_backbone
from vigil_trainer.registry import Candidate, register
from vigil_trainer.registry_fusion import run_registry_fusion
from vigil_trainer.reporting import JobReporter
from vigil_trainer.search import SearchError

log = logging.getLogger("vigil_trainer")
SPEC = TypeAdapter[OneClassSpec | ClassifySpec](JobSpec)
# Failures caused by the job's input: the message is the user's to act on, no traceback needed.
INPUT_ERRORS = (
    ValidationError,
    DatasetError,
    WeightsError,
    UnknownArchitectureError,
    UnknownLossError,
    UnknownMetricError,
    FusionError,
    SearchError,
)


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
    allow_weight_download: bool = False
    cache_dir: Path | None = None
    progress_interval_s: float = 1.0
    lease_s: float = 300.0

    def classify(self) -> ClassifyContext:
        return ClassifyContext(
            s3=self.s3,
            s3_settings=self.s3_settings,
            sessions=self.sessions,
            device=self.device,
            allow_weight_download=self.allow_weight_download,
            cache_dir=self.cache_dir,
        )


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
    try:
        spec = SPEC.validate_python(raw_spec)
        reporter.log("info", f"{spec.task} job {spec.name!r} started on {ctx.device}")
        manifest = _dispatch(ctx, job_id, spec, reporter)
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


def _dispatch(
    ctx: TrainerContext,
    job_id: uuid.UUID,
    spec: OneClassSpec | ClassifySpec,
    reporter: JobReporter,
) -> ModelManifest:
    if isinstance(spec, ClassifySpec):
        if spec.fusion is not None and spec.fusion.kind == "registry_models":
            return run_registry_fusion(ctx.classify(), job_id=job_id, spec=spec, reporter=reporter)
        return run_classify(ctx.classify(), job_id=job_id, spec=spec, reporter=reporter)
    return _run_one_class(ctx, job_id, spec, reporter)


def _run_one_class(
    ctx: TrainerContext, job_id: uuid.UUID, spec: OneClassSpec, reporter: JobReporter
) -> ModelManifest:
    dataset = load_manifest(ctx.s3, ctx.s3_settings.datasets_bucket, spec.dataset)
    reporter.log(
        "info",
        f"dataset {dataset.name} version {dataset.version[:12]}: {len(dataset.items)} images",
    )
    backbone = one_class_backbone(spec, s3=ctx.s3, models_bucket=ctx.s3_settings.models_bucket)
    reporter.log("info", f"backbone: {backbone.provenance.name} from {backbone.provenance.source}")
    if spec.backbone_model_id is not None:
        parent = read_manifest(
            ctx.s3, bucket=ctx.s3_settings.models_bucket, model_id=spec.backbone_model_id
        )
        warning = untouched_patch_stages(parent, spec.appearance.stages)
        if warning is not None:
            reporter.log("warning", warning)
    fitted = fit_one_class(
        backbone=backbone,
        s3=ctx.s3,
        bucket=ctx.s3_settings.datasets_bucket,
        spec=spec,
        dataset=dataset,
        device=ctx.device,
        batch_size=ctx.batch_size,
        progress=reporter.progress,
        should_stop=reporter.should_stop,
    )
    reporter.progress({"stage": "registering"}, force=True)
    candidate = Candidate(
        spec=spec,
        architecture=f"{spec.backbone}+patch-knn",
        tensors=fitted.tensors,
        threshold=fitted.threshold,
        provenance=fitted.provenance,
        preprocessing=fitted.preprocessing,
        dataset_sha256=fitted.dataset_sha256,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        n_images=fitted.n_images,
        metrics=fitted.metrics,
        k=spec.k,
        parent_model_id=spec.backbone_model_id,
    )
    return register(
        s3=ctx.s3,
        bucket=ctx.s3_settings.models_bucket,
        sessions=ctx.sessions,
        job_id=job_id,
        candidate=candidate,
    )
