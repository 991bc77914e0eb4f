"""A retrain job's footage trimmed by the production model before the fit (``trim``), with the
camera's events read from the events table: confirmed and not reviewed ones are flagged (left
out with their margin), reviewed false alarms cleared (kept as normal). A frame is matched to an
event by capture time; when a retrain left an event's frames out already (the API drops frames
while a confirmed event ran), the frames either side of that gap carry it, so its margin still
applies."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from vigil_shared.dataset_groups import is_event_group
from vigil_shared.datasets import DatasetManifest
from vigil_shared.db.models import Event
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_trainer.context import JobContext
from vigil_trainer.one_class.clips import Clip, clips_of, frame_rate
from vigil_trainer.one_class.trim import Marks, Span, Trimmer, min_run, trim_footage


@dataclass(frozen=True)
class KnownEvent:
    camera_id: str
    started: datetime
    ended: datetime
    cleared: bool  # reviewed as a false alarm


def retrain_footage(
    ctx: JobContext, spec: OneClassSpec, dataset: DatasetManifest
) -> tuple[DatasetManifest, dict[str, Any]]:
    """The dataset to fit (footage trimmed when ``spec.trim_margin_s`` is set) and what the
    trim did, for the evaluation's detail; without a production model, nothing is trimmed."""
    if spec.trim_margin_s is None:
        return dataset, {}
    production = ctx.production(dataset.camera_ids)
    if production is None or production.model is None:
        why = "no production model" if production is None else production.unavailable
        ctx.reporter.log("warning", f"footage not trimmed ({why}): every frame is fitted")
        return dataset, {"trim": {"skipped": why}}
    events = known_events(ctx, dataset.camera_ids)
    margin_s = spec.trim_margin_s
    trimmer = Trimmer(
        model=production.model,
        s3=ctx.s3,
        bucket=ctx.s3_settings.datasets_bucket,
        is_footage=is_footage,
        marks=lambda clip: event_marks(clip, events, margin_s=margin_s),
        fps=frame_rate(clips_of(dataset), spec.footage_fps),
        min_run=min_run(spec),
        margin_s=margin_s,
        chunk=ctx.batch_size,
        lifecycle=ctx.events.lifecycle_for(production.model.manifest.metrics),
    )
    trimmed, report = trim_footage(dataset, trimmer)
    detail = report.as_detail() | {"production_model_id": production.model_id}
    ctx.reporter.log("info", f"footage trimmed by {production.model_id}: {detail}")
    return trimmed, {"trim": detail}


def is_footage(clip: Clip) -> bool:
    """Retained footage labeled normal by default, not a reviewed event's frames."""
    return clip.is_normal and not is_event_group(clip.group)


def known_events(ctx: JobContext, camera_ids: Sequence[str]) -> list[KnownEvent]:
    with ctx.sessions() as session:
        rows = session.execute(
            select(Event.camera_id, Event.started_at, Event.ended_at, Event.review).where(
                Event.camera_id.in_(list(camera_ids))
            )
        ).all()
    return [
        KnownEvent(camera, started, ended or started, review == "false_positive")
        for camera, started, ended, review in rows
    ]


def event_marks(clip: Clip, events: Sequence[KnownEvent], *, margin_s: float) -> Marks:
    """The clip's frame spans of the events that ran while it was filmed (within the margin)."""
    times = [i.captured_at for i in clip.items]
    cameras = {i.camera_id for i in clip.items}
    if not times or any(t is None for t in times):
        return Marks()
    known: list[datetime] = [t for t in times if t is not None]
    margin = timedelta(seconds=margin_s)
    flagged: list[Span] = []
    cleared: list[Span] = []
    for event in events:
        if event.camera_id not in cameras:
            continue
        if event.ended < known[0] - margin or event.started > known[-1] + margin:
            continue
        lo, hi = bisect_left(known, event.started), bisect_right(known, event.ended) - 1
        if hi < lo:
            lo, hi = hi, lo  # no frame inside: the frames either side of the gap
        span = (max(lo, 0), min(hi, len(known) - 1))
        (cleared if event.cleared else flagged).append(span)
    return Marks(flagged=flagged, cleared=cleared)
