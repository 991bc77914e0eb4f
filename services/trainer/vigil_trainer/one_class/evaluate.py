"""A one_class candidate and the production model it would replace, scored on the same held-out
evidence and recorded as an ``evaluations`` row: what the evaluation gate reads.

The evidence is the fit's own split (same seed, same fraction): the held-out normal groups and
the groups with labeled anomalies (confirmed events of a retrain), so the banks never saw it.
Both models are loaded from the registry and score each group in capture order through
``score_frames``, as inference would, each at its own threshold. Figures: frame AUROC and AUPR,
and, with each group replayed as a camera where one frame at or above the threshold raises an
alarm (reviewed evidence is often one frame per event), event recall and false alarms per hour
of held-out normal footage (``vigil_shared.vision.event_metrics``). The frame rate is read from
the frames' capture times (``clips.frame_rate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from vigil_shared.datasets import DatasetManifest
from vigil_shared.db.models import Evaluation
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.schemas.assignments import GLOBAL_SCOPE
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.vision.event_metrics import evaluate
from vigil_shared.vision.inferencer import load_frame_model
from vigil_shared.vision.scoring import FrameModel
from vigil_trainer.context import JobContext
from vigil_trainer.one_class.clips import Clip, clips_of, frame_rate, segmented, split_clips
from vigil_trainer.one_class.trim import clip_scores
from vigil_trainer.production import Compared, store_evaluation

ONE_FRAME_ALARM = LifecycleSettings(open_k=1, open_n=1, close_after=1)


def record_evaluation(
    *,
    ctx: JobContext,
    spec: OneClassSpec,
    dataset: DatasetManifest,
    model_id: str,
    detail: dict[str, Any] | None = None,
) -> Evaluation:
    """Score the candidate and production on the fit's held-out groups and store the row
    (``detail``: what else the evaluation should say, e.g. how the footage was trimmed)."""
    everything = clips_of(dataset)
    fps = frame_rate(everything, spec.footage_fps)
    pieces = segmented(everything, fps=fps, segment_s=spec.segment_s)  # as the fit cut them
    split = split_clips(pieces, holdout_fraction=spec.holdout_fraction, seed=spec.seed)
    clips = split.holdout + split.validation
    bucket = ctx.s3_settings.models_bucket
    candidate = load_frame_model(ctx.s3, bucket=bucket, model_id=model_id, device=ctx.device)
    production = ctx.production(dataset.camera_ids)
    theirs = None
    if production is not None and production.model is not None:
        theirs = figures(ctx, production.model, clips, fps)
    compared = Compared(
        groups=[c.group for c in clips],
        metrics=figures(ctx, candidate, clips, fps),
        production=production,
        production_metrics=theirs,
        detail=evidence(clips, fps) | unavailable(production) | (detail or {}),
    )
    row = store_evaluation(
        sessions=ctx.sessions,
        job_id=ctx.job_id,
        model_id=model_id,
        dataset=dataset,
        compared=compared,
    )
    ctx.reporter.log("info", f"evaluation {row.id}: {row.metrics} against {theirs}")
    return row


def figures(
    ctx: JobContext, model: FrameModel, clips: Sequence[Clip], fps: float
) -> dict[str, Any]:
    """The model's figures on the clips, at its own threshold."""
    scores = {c.group: _scores(ctx, model, c) for c in clips}
    labels = {c.group: torch.tensor(c.abnormal) for c in clips}
    threshold = model.manifest.threshold
    report = evaluate(scores, labels, threshold=threshold, fps=fps, settings=ONE_FRAME_ALARM)
    frames, events = report["frames"], report["events"]
    return {
        "auroc": frames["auroc"],
        "aupr": frames["aupr"],
        "event_recall": events["recall"],
        "false_alarms_per_hour": events["false_alarms_per_hour"],
        "false_alarms": events["false_alarms"],
        "threshold": threshold,
    }


def _scores(ctx: JobContext, model: FrameModel, clip: Clip) -> torch.Tensor:
    bucket = ctx.s3_settings.datasets_bucket
    scores = clip_scores(model, ctx.s3, bucket, clip, chunk=ctx.batch_size)
    finite = scores[torch.isfinite(scores)]
    floor = float(finite.min()) if finite.numel() else 0.0
    return torch.nan_to_num(scores, nan=floor, posinf=floor, neginf=floor)


def evidence(clips: Sequence[Clip], fps: float) -> dict[str, Any]:
    return {
        "frames": sum(len(c.items) for c in clips),
        "abnormal_frames": sum(sum(c.abnormal) for c in clips),
        "groups": len(clips),
        "fps": fps,
        "alarm": "one frame at or above the model's threshold",
    }


def unavailable(production: Any) -> dict[str, Any]:
    if production is None:
        return {"production": f"no production model serves these cameras or {GLOBAL_SCOPE}"}
    if production.model is None:
        return {
            "production": f"{production.model_id} could not be loaded: {production.unavailable}"
        }
    return {}
