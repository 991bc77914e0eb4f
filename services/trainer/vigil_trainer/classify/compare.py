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
from dataclasses import dataclass

import torch
from minio import Minio
from minio.error import S3Error
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.db.models import ModelAssignmentRow
from vigil_shared.schemas.manifests import ProductionComparison
from vigil_shared.storage import StorageError
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.score_metrics import auroc, average_precision
from vigil_shared.vision.scoring import FrameModel
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


def comparison(
    production: Production,
    *,
    theirs: torch.Tensor | None,
    ours: torch.Tensor,
    positives: torch.Tensor,
) -> ProductionComparison:
    """Production's figures on the held-out frames and the candidate's lead over them."""
    if theirs is None:
        return ProductionComparison(
            model_id=production.model_id,
            scope=production.scope,
            unavailable=production.unavailable or "not scored",
        )
    their_metrics = score_metrics(theirs, positives)
    our_metrics = score_metrics(ours, positives)
    delta = {
        k: our_metrics[k] - their_metrics[k]
        for k in COMPARED
        if our_metrics[k] == our_metrics[k] and their_metrics[k] == their_metrics[k]
    }
    return ProductionComparison(
        model_id=production.model_id,
        scope=production.scope,
        metrics={k: v for k, v in their_metrics.items() if v == v},
        delta=delta,
    )


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
    production = load_production(
        s3=s3, bucket=bucket, sessions=sessions, camera_ids=camera_ids, device=device
    )
    if production is None:
        return None
    index = data.val_index
    labels = data.labels[index]
    positives = torch.tensor([data.classes[int(i)] not in normal_classes for i in labels])
    if production.model is None:
        return comparison(production, theirs=None, ours=own_scores, positives=positives)
    cameras = [data.groups[int(i)] for i in index]  # a group is the unit with its own motion
    scores: list[float] = []
    for start in range(0, len(index), 32):
        batch = index[start : start + 32]
        images = [data.images[int(i)] for i in batch]
        scored = production.model.score_frames(cameras[start : start + 32], images)
        scores.extend(s.score for s in scored)
    return comparison(production, theirs=torch.tensor(scores), ours=own_scores, positives=positives)
