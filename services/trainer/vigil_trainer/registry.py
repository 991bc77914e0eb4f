"""Writes a fitted model to the registry: artifact and manifest in S3, a row in PostgreSQL."""

from __future__ import annotations

import json
import uuid
from importlib.metadata import version

from minio import Minio
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import Model
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.jobs import OneClassSpec
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.storage import put_bytes
from vigil_trainer.one_class import FittedModel

_MODEL_NAMESPACE = uuid.UUID("1c3a6b0e-7f57-5d1e-8c39-2b7d94a0e5c4")


def model_id_for(job_id: uuid.UUID) -> str:
    """Deterministic per job, so a job re-run after a lost worker overwrites, not duplicates."""
    return "m-" + uuid.uuid5(_MODEL_NAMESPACE, str(job_id)).hex[:16]


def register(
    *,
    s3: Minio,
    bucket: str,
    sessions: sessionmaker[Session],
    job_id: uuid.UUID,
    spec: OneClassSpec,
    fitted: FittedModel,
) -> ModelManifest:
    model_id = model_id_for(job_id)
    artifact_key = ModelManifest.artifact_key_for(model_id)
    artifact_sha256 = put_bytes(
        s3, bucket, artifact_key, fitted.artifact, "application/octet-stream"
    )
    manifest = ModelManifest(
        model_id=model_id,
        name=spec.name,
        task=spec.task,
        architecture=f"{spec.backbone}+knn",
        backbone_weights=fitted.provenance,
        preprocessing=fitted.preprocessing,
        threshold=fitted.threshold,
        k=spec.k,
        artifact_key=artifact_key,
        artifact_sha256=artifact_sha256,
        dataset_prefix=spec.dataset.prefix,
        dataset_sha256=fitted.dataset_sha256,
        n_images=fitted.n_images,
        spec=spec,
        metrics=fitted.metrics,
        code_version=version("vigil"),
        created_at=utc_now(),
    )
    manifest_json = json.dumps(manifest.model_dump(mode="json", by_alias=True), indent=2)
    put_bytes(
        s3, bucket, manifest.manifest_key(model_id), manifest_json.encode(), "application/json"
    )
    row = {
        "id": model_id,
        "name": spec.name,
        "task": spec.task,
        "architecture": manifest.architecture,
        "stage": "candidate",
        "artifact_key": artifact_key,
        "artifact_sha256": artifact_sha256,
        "manifest_key": manifest.manifest_key(model_id),
        "dataset_sha256": fitted.dataset_sha256,
        "threshold": fitted.threshold,
        "metrics": fitted.metrics,
        "job_id": job_id,
    }
    statement = insert(Model).values(**row)
    statement = statement.on_conflict_do_update(
        index_elements=[Model.id], set_={k: statement.excluded[k] for k in row if k != "id"}
    )
    with sessions.begin() as session:
        session.execute(statement)
    return manifest
