"""The production model a new model would replace: the one serving a dataset's cameras, found
in the assignments and loaded through the inference path, or why it could not be. Every kind
compares its candidate with it on the candidate's held-out evidence, and stores the comparison
as an ``evaluations`` row (``store_evaluation``), which the API's evaluation gate reads.

The scope is the dataset's camera when it has exactly one and that camera has its own
production model, otherwise the global default (``*``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from minio import Minio
from minio.error import S3Error
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.datasets import DatasetManifest
from vigil_shared.db.models import Evaluation, ModelAssignmentRow
from vigil_shared.storage import StorageError
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.scoring import FrameModel

log = logging.getLogger("vigil_trainer")


def production_model(
    sessions: sessionmaker[Session], camera_ids: Sequence[str]
) -> tuple[str, str] | None:
    """(scope, model id) of the production model serving these cameras, if any."""
    scopes = [camera_ids[0], "*"] if len(camera_ids) == 1 else ["*"]
    with sessions() as session:
        for scope in scopes:
            row = session.get(ModelAssignmentRow, scope)
            if row is not None and row.production_model_id is not None:
                return scope, row.production_model_id
    return None


@dataclass(frozen=True)
class Production:
    """The production model serving a dataset's cameras, loaded, or why it could not be."""

    scope: str
    model_id: str
    model: FrameModel | None
    unavailable: str | None = None


def load_production(
    *,
    s3: Minio,
    bucket: str,
    sessions: sessionmaker[Session],
    camera_ids: Sequence[str],
    device: str,
) -> Production | None:
    found = production_model(sessions, camera_ids)
    if found is None:
        return None
    scope, model_id = found
    try:
        model = load_frame_model(s3, bucket=bucket, model_id=model_id, device=device)
    except (S3Error, StorageError, ValueError) as exc:
        # A broken production artifact is the operator's next problem to fix, not a reason to
        # throw away the candidate that may replace it.
        log.warning("production model %s cannot be compared: %s", model_id, exc)
        return Production(scope=scope, model_id=model_id, model=None, unavailable=str(exc))
    return Production(scope=scope, model_id=model_id, model=model)


@dataclass(frozen=True)
class Compared:
    """A candidate's figures and production's (None: none to compare with) on ``groups``."""

    groups: Sequence[str]
    metrics: dict[str, Any]
    production: Production | None
    production_metrics: dict[str, Any] | None
    detail: dict[str, Any]


def store_evaluation(
    *,
    sessions: sessionmaker[Session],
    job_id: uuid.UUID,
    model_id: str,
    dataset: DatasetManifest,
    compared: Compared,
) -> Evaluation:
    """The comparison as an ``evaluations`` row; production counts only when it was scored."""
    production, cameras = compared.production, dataset.camera_ids
    scored = production is not None and compared.production_metrics is not None
    row = Evaluation(
        model_id=model_id,
        production_model_id=production.model_id if scored and production else None,
        scope=production.scope if production else (cameras[0] if len(cameras) == 1 else "*"),
        camera_ids=cameras,
        dataset_name=dataset.name,
        dataset_version=dataset.version,
        job_id=job_id,
        groups=list(compared.groups),
        metrics=compared.metrics,
        production_metrics=compared.production_metrics if scored else None,
        detail=compared.detail,
    )
    with sessions.begin() as session:
        session.add(row)
    return row
