"""The production model a new model would replace: the one serving a dataset's cameras, found
in the assignments and loaded through the inference path, or why it could not be. Every kind
compares its candidate with it on the candidate's held-out evidence.

The scope is the dataset's camera when it has exactly one and that camera has its own
production model, otherwise the global default (``*``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from minio import Minio
from minio.error import S3Error
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import ModelAssignmentRow
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
