"""The comparison a reviewer needs before promoting: the current production model for the
same cameras, scored on this job's held-out frames, metric by metric.

The scope is the dataset's camera when it has exactly one and that camera has its own
production model, otherwise the global default (``*``). Any model kind compares, through its
anomaly score (AUROC, AUPR); a classify model with the same classes also through accuracy and
macro-F1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from minio import Minio
from sqlalchemy.orm import Session, sessionmaker

from vigil_shared.schemas.manifests import ProductionComparison
from vigil_shared.vision.score_metrics import auroc, average_precision
from vigil_shared.vision.scoring import FrameModel
from vigil_trainer.classify.data import ClassifyData
from vigil_trainer.production import Production, load_production

COMPARED = ("auroc", "aupr")
BATCH = 32


def score_metrics(scores: torch.Tensor, positives: torch.Tensor) -> dict[str, float]:
    return {"auroc": auroc(scores, positives), "aupr": average_precision(scores, positives)}


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
    theirs = production_scores(production.model, data)
    return comparison(production, theirs=theirs, ours=own_scores, positives=positives)


def production_scores(model: FrameModel, data: ClassifyData) -> torch.Tensor:
    """``model``'s scores of the held-out frames in order, each group as one camera (the unit
    with its own motion), with the frames' capture times when every held-out frame has one."""
    index = [int(i) for i in data.val_index]
    cameras = [data.groups[i] for i in index]
    stamps = [data.times[i] if data.times else None for i in index]
    known = [t for t in stamps if t is not None]
    scores: list[float] = []
    for start in range(0, len(index), BATCH):
        images = [data.images[i] for i in index[start : start + BATCH]]
        times = known[start : start + BATCH] if len(known) == len(index) else None
        scored = model.score_frames(cameras[start : start + BATCH], images, times)
        scores.extend(s.score for s in scored)
    return torch.tensor(scores)
