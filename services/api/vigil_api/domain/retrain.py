"""Retraining a camera's model from its own footage and reviews, in one call.

The dataset is the camera's retained frames over a time range (read back from the frames topic,
grouped into time segments so some can be held out; frames while a confirmed event ran are left
out, they are not normal footage) plus every reviewed event of the camera
(each its own group: confirmed ones labeled anomalies, false alarms normal). The job is the
camera's production model's own spec (read from its manifest: same kind, same settings) with the
new dataset; the trainer then scores the candidate and that production model on the same
held-out groups and records the comparison (``evaluations``), which the gate reads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from minio.error import S3Error
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_api.domain.dataset_sources import (
    NORMAL,
    EventFilter,
    FrameRange,
    SourceError,
    frames_from_topic,
    reviewed_event_frames,
)
from vigil_api.domain.gate import production_of
from vigil_shared.dataset_groups import cut_count, footage_rate
from vigil_shared.datasets import DatasetRef, NewImage
from vigil_shared.db.models import Event, Model
from vigil_shared.kafka import make_consumer
from vigil_shared.schemas.jobs import JobSpec
from vigil_shared.schemas.one_class import RETRAIN_TRIM_MARGIN_S, OneClassSpec, as_requested
from vigil_shared.settings import KafkaSettings
from vigil_shared.storage import get_bytes

SPEC: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)
REVIEWS = ("confirmed", "false_positive")


class NothingToRetrainError(LookupError):
    """The camera has no production model whose spec a retrain could reuse; says what to do."""


@dataclass(frozen=True)
class Footage:
    images: list[NewImage]
    skipped_events: list[str]


def dataset_name(camera_id: str) -> str:
    """Where a camera's retrain datasets are kept by default (dataset names are lowercase)."""
    return f"retrain-{camera_id.lower()}"


def production_spec(
    *, session: Session, s3: Minio, bucket: str, camera_id: str
) -> tuple[str, dict[str, Any]]:
    """The camera's production model (its own, else the global one) and the spec it was
    trained with, from its manifest, as its job asked for it (``as_requested``)."""
    model_id = production_of(session=session, scope=camera_id)
    model = session.get(Model, model_id) if model_id is not None else None
    if model is None:
        raise NothingToRetrainError(
            f"camera {camera_id} has no production model to retrain: train one with "
            "POST /api/v1/jobs and promote it first"
        )
    try:
        manifest = json.loads(get_bytes(s3, bucket, model.manifest_key))
    except (S3Error, ValueError) as exc:
        raise NothingToRetrainError(
            f"the manifest of production model {model.id} cannot be read ({exc}): its spec is "
            "unknown, so it cannot be retrained; train a model with POST /api/v1/jobs instead"
        ) from exc
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        raise NothingToRetrainError(f"production model {model.id} records no spec to retrain with")
    metrics = manifest.get("metrics")
    return model.id, as_requested(spec, metrics if isinstance(metrics, dict) else {})


def retrain_spec(spec: dict[str, Any], *, dataset: DatasetRef) -> JobSpec:
    """The production spec with the new dataset (a one_class spec with its footage trimmed by
    production, ``trim_margin_s``); ``SourceError`` if it no longer validates."""
    update: dict[str, Any] = {"dataset": dataset.model_dump(mode="json")}
    if spec.get("task") == "one_class" and spec.get("trim_margin_s") is None:
        # The footage is taken as normal: trimmed by production first (one-class.md).
        update["trim_margin_s"] = RETRAIN_TRIM_MARGIN_S
    try:
        return SPEC.validate_python(spec | update)
    except ValidationError as exc:
        raise SourceError(
            f"the production model's spec is not a valid job spec now: {exc}"
        ) from exc


def camera_footage(
    *,
    session: Session,
    s3: Minio,
    snapshots_bucket: str,
    kafka: KafkaSettings,
    wanted: FrameRange,
    max_frames: int,
    spec: JobSpec,
) -> Footage:
    """The camera's frames in the range (time segments) and its reviewed events' frames;
    ``SourceError`` when they hold fewer normal groups than ``spec``'s fit can split."""
    consumer = make_consumer(kafka, group_id=None)
    try:
        frames = frames_from_topic(
            consumer=consumer, topic=kafka.topics.frames, wanted=wanted, max_frames=max_frames
        )
    finally:
        consumer.close()
    spans = confirmed_spans(session, wanted.camera_id)
    frames = [f for f in frames if not _during(f, spans)]
    groups = fit_groups(frames, spec)
    if groups < 2:
        cut = isinstance(spec, OneClassSpec) and spec.segment_s is not None
        raise SourceError(
            f"camera {wanted.camera_id}'s frames in that range make {groups} group(s) of normal "
            "footage for the fit; training needs 2 (one to hold out): widen the range"
            + ("" if cut else " or lower segment_s")
        )
    events = reviewed_event_frames(
        session=session,
        s3=s3,
        bucket=snapshots_bucket,
        wanted=EventFilter(camera_ids=[wanted.camera_id], reviews=REVIEWS, start=None, end=None),
        max_frames=max_frames,
    )
    return Footage(images=frames + events.images, skipped_events=events.skipped)


def fit_groups(frames: Sequence[NewImage], spec: JobSpec) -> int:
    """How many normal groups ``spec``'s fit sees in these frames: their time segments, each
    cut as a one_class fit cuts long footage (its ``segment_s``), so an hour of one camera is
    not refused for being one segment when the fit would make 120 groups of it."""
    segments: defaultdict[str, list[NewImage]] = defaultdict(list)
    for image in frames:
        if image.label == NORMAL:
            segments[image.group].append(image)
    if not isinstance(spec, OneClassSpec):
        return len(segments)
    times = [[image.captured_at for image in segment] for segment in segments.values()]
    fps = footage_rate(times, spec.footage_fps)
    return sum(cut_count(len(t), fps=fps, segment_s=spec.segment_s) for t in times)


def confirmed_spans(session: Session, camera_id: str) -> list[tuple[datetime, datetime]]:
    """When the camera's confirmed events ran: their footage is not normal, whatever a range
    of frames is labeled (an event still open runs to now)."""
    rows = session.execute(
        select(Event.started_at, Event.ended_at).where(
            Event.camera_id == camera_id, Event.review == "confirmed"
        )
    )
    now = datetime.now(UTC)
    return [(started, ended or now) for started, ended in rows]


def _during(image: NewImage, spans: list[tuple[datetime, datetime]]) -> bool:
    at = image.captured_at
    return at is not None and any(start <= at <= end for start, end in spans)
