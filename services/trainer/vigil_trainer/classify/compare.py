"""The comparison a reviewer needs before promoting: the current production model for the
same cameras, scored on this job's held-out frames, metric by metric.

The scope is the dataset's camera when it has exactly one and that camera has its own
production model, otherwise the global default (``*``). Any model kind compares, through its
anomaly score (AUROC, AUPR); a classify model with the same classes also through accuracy and
macro-F1.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from minio import Minio
from minio.error import S3Error
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import ModelAssignmentRow
from vigil_shared.schemas.manifests import ProductionComparison
from vigil_shared.storage import StorageError
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.score_metrics import auroc, average_precision
from vigil_trainer.classify.data import ClassifyData

log = logging.getLogger("vigil_trainer")
COMPARED = ("auroc", "aupr")


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


def score_metrics(scores: torch.Tensor, positives: torch.Tensor) -> dict[str, float]:
    return {"auroc": auroc(scores, positives), "aupr": average_precision(scores, positives)}


def compare_with_production(
    *,
    s3: Minio,
    bucket: str,
    sessions: sessionmaker[Session],
    data: ClassifyData,
    camera_ids: Sequence[str],
    own_scores: torch.Tensor,
    normal_classes: Sequence[str],
    device: str,
) -> ProductionComparison | None:
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
        return ProductionComparison(model_id=model_id, scope=scope, unavailable=str(exc))
    index = data.val_index
    labels = data.labels[index]
    positives = torch.tensor([data.classes[int(i)] not in normal_classes for i in labels])
    cameras = [data.groups[int(i)] for i in index]  # a group is the unit with its own motion
    scores: list[float] = []
    for start in range(0, len(index), 32):
        batch = index[start : start + 32]
        images = [data.images[int(i)] for i in batch]
        scored = model.score_frames(cameras[start : start + 32], images)
        scores.extend(s.score for s in scored)
    theirs = score_metrics(torch.tensor(scores), positives)
    ours = score_metrics(own_scores, positives)
    delta = {
        k: ours[k] - theirs[k] for k in COMPARED if ours[k] == ours[k] and theirs[k] == theirs[k]
    }
    return ProductionComparison(
        model_id=model_id,
        scope=scope,
        metrics={k: v for k, v in theirs.items() if v == v},
        delta=delta,
    )
