"""What the job runner hands a model kind: the worker's clients, the job's id and reporter, and
the steps every kind takes (load the spec's dataset, register the candidate).

Every kind's run takes one ``JobContext`` and its spec (``kinds.KindRun``), so a kind needs
nothing from another kind nor from the runner beyond this module.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.datasets import DatasetManifest, DatasetRef, load_manifest
from vigil_shared.event_lifecycle import InferenceDebounce, LifecycleSettings
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.settings import S3Settings
from vigil_trainer.production import Production, load_production
from vigil_trainer.registry import Candidate, register
from vigil_trainer.reporting import JobReporter


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
    heartbeat_s: float = 10.0
    lease_s: float = 60.0
    events: InferenceDebounce = field(default_factory=InferenceDebounce)
    """Inference's event lifecycle: how a fit counts events (``lifecycle``), and how a replay
    or a trim counts a stored model's (``events.lifecycle_for`` its metrics)."""

    @property
    def lifecycle(self) -> LifecycleSettings:
        """The deployment's lifecycle, which a fit calibrates its threshold for (and records)."""
        return self.events.lifecycle()

    def for_job(self, job_id: uuid.UUID, reporter: JobReporter) -> JobContext:
        clients = {f.name: getattr(self, f.name) for f in fields(self)}
        return JobContext(**clients, job_id=job_id, reporter=reporter)


@dataclass(frozen=True, kw_only=True)
class JobContext(TrainerContext):
    """The worker's clients and one running job: its id (a checkpoint's and the model's key)
    and its reporter (progress, log lines, the cancel flag)."""

    job_id: uuid.UUID
    reporter: JobReporter

    def production(self, camera_ids: Sequence[str]) -> Production | None:
        """The production model serving these cameras, loaded (``production.load_production``)."""
        return load_production(
            s3=self.s3,
            bucket=self.s3_settings.models_bucket,
            sessions=self.sessions,
            camera_ids=camera_ids,
            device=self.device,
        )

    def load_dataset(self, ref: DatasetRef) -> DatasetManifest:
        """The spec's dataset manifest, named in the job log with its version and size."""
        dataset = load_manifest(self.s3, self.s3_settings.datasets_bucket, ref)
        self.reporter.log(
            "info",
            f"dataset {dataset.name} version {dataset.version[:12]}: {len(dataset.items)} images",
        )
        return dataset

    def register(self, candidate: Candidate) -> ModelManifest:
        """Store the job's model and its ``candidate`` row (``registry.register``)."""
        return register(
            s3=self.s3,
            bucket=self.s3_settings.models_bucket,
            sessions=self.sessions,
            job_id=self.job_id,
            candidate=candidate,
        )
