"""Writes a trained model to the registry: artifact and manifest in S3, a row in PostgreSQL.

Every model enters as a ``candidate``; promotion and rollback belong to the API
(``vigil_api.domain.registry_stages``). The artifact is safetensors (never pickle) and the
manifest records its sha256, which every loader checks.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from importlib.metadata import version

import torch
from minio import Minio
from safetensors.torch import save as save_safetensors
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Model
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import JobSpec
from vigil_shared.schemas.manifests import (
    EnsembleOf,
    Evaluation,
    ModelManifest,
    Preprocessing,
    ProductionComparison,
    StudySummary,
    WeightsProvenance,
)
from vigil_shared.storage import put_bytes

_MODEL_NAMESPACE = uuid.UUID("1c3a6b0e-7f57-5d1e-8c39-2b7d94a0e5c4")


def model_id_for(job_id: uuid.UUID) -> str:
    """Deterministic per job, so a job re-run after a lost worker overwrites, not duplicates."""
    return "m-" + uuid.uuid5(_MODEL_NAMESPACE, str(job_id)).hex[:16]


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A trained model (or an ensemble of registry models) before it has an id: what the
    manifest and the row are made from."""

    spec: JobSpec
    architecture: str
    tensors: dict[str, torch.Tensor]
    threshold: float
    provenance: WeightsProvenance | None
    preprocessing: Preprocessing | None
    dataset_sha256: str
    n_images: int
    metrics: dict[str, float]
    dataset_name: str | None = None
    dataset_version: str | None = None
    dataset_prefix: str | None = None
    classes: tuple[str, ...] = ()
    normal_classes: tuple[str, ...] = ()
    head: str | None = None
    head_hidden: int | None = None
    ensemble_size: int = 1
    k: int | None = None
    parent_model_id: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    evaluation: Evaluation | None = None
    comparison: ProductionComparison | None = None
    study: StudySummary | None = None
    ensemble: EnsembleOf | None = None

    @property
    def task(self) -> str:
        return "ensemble" if self.ensemble is not None else self.spec.task


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    """JSON has no NaN: an undefined metric (one class absent) is left out."""
    return {k: float(v) for k, v in metrics.items() if v == v and abs(v) != float("inf")}


def build_manifest(
    candidate: Candidate, *, model_id: str, artifact_key: str, artifact_sha256: str
) -> ModelManifest:
    c = candidate
    return ModelManifest.model_validate(
        {
            "model_id": model_id,
            "name": c.spec.name,
            "task": c.task,
            "architecture": c.architecture,
            "backbone_weights": c.provenance,
            "preprocessing": c.preprocessing,
            "threshold": c.threshold,
            "thresholds": c.thresholds,
            "classes": c.classes,
            "normal_classes": c.normal_classes,
            "head": c.head,
            "head_hidden": c.head_hidden,
            "ensemble_size": c.ensemble_size,
            "k": c.k,
            "artifact_key": artifact_key,
            "artifact_sha256": artifact_sha256,
            "dataset_name": c.dataset_name,
            "dataset_version": c.dataset_version,
            "dataset_prefix": c.dataset_prefix,
            "dataset_sha256": c.dataset_sha256,
            "n_images": c.n_images,
            "parent_model_id": c.parent_model_id,
            "spec": c.spec,
            "metrics": _finite(c.metrics),
            "evaluation": c.evaluation,
            "comparison": c.comparison,
            "study": c.study,
            "ensemble": c.ensemble,
            "code_version": version("vigil"),
            "created_at": utc_now(),
        }
    )


def register(
    *,
    s3: Minio,
    bucket: str,
    sessions: sessionmaker[Session],
    job_id: uuid.UUID,
    candidate: Candidate,
) -> ModelManifest:
    """Store the artifact, then the manifest, then upsert the ``candidate`` row."""
    model_id = model_id_for(job_id)
    artifact_key = ModelManifest.artifact_key_for(model_id)
    blob = save_safetensors(
        {k: v.detach().contiguous().cpu() for k, v in candidate.tensors.items()}
    )
    artifact_sha256 = put_bytes(s3, bucket, artifact_key, blob, "application/octet-stream")
    manifest = build_manifest(
        candidate, model_id=model_id, artifact_key=artifact_key, artifact_sha256=artifact_sha256
    )
    # A model that is not an ensemble is written without the field, so a reader from before
    # ensembles existed (``extra="forbid"``) still reads it during a rolling upgrade.
    unused = {"ensemble"} if manifest.ensemble is None else None
    document = manifest.model_dump(mode="json", by_alias=True, exclude=unused)
    body = json.dumps(document, indent=2).encode()
    put_bytes(s3, bucket, manifest.manifest_key(model_id), body, "application/json")
    _upsert_row(sessions, manifest, job_id)
    return manifest


def _upsert_row(
    sessions: sessionmaker[Session], manifest: ModelManifest, job_id: uuid.UUID
) -> None:
    row = {
        "id": manifest.model_id,
        "name": manifest.name,
        "task": manifest.task,
        "architecture": manifest.architecture,
        "stage": "candidate",
        "artifact_key": manifest.artifact_key,
        "artifact_sha256": manifest.artifact_sha256,
        "manifest_key": manifest.manifest_key(manifest.model_id),
        "dataset_sha256": manifest.dataset_sha256,
        "threshold": manifest.threshold,
        "metrics": manifest.metrics,
        "job_id": job_id,
        "parent_model_id": manifest.parent_model_id,
        "dataset_name": manifest.dataset_name,
        "dataset_version": manifest.dataset_version,
    }
    statement = insert(Model).values(**row)
    # A re-run job rewrites its model but never demotes one an operator already promoted.
    updates = {k: statement.excluded[k] for k in row if k not in {"id", "stage"}}
    statement = statement.on_conflict_do_update(index_elements=[Model.id], set_=updates)
    with sessions.begin() as session:
        session.execute(statement)
