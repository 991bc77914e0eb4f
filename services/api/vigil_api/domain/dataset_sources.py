"""Where a new dataset version's images come from, besides an uploaded archive: a camera's frames
over a time range (read back from the frames topic), or reviewed events' peak frames.

Both are bounded (``VIGIL_API_DATASET_MAX_FRAMES``, and a deadline for the topic read) and
return ``NewImage``s for ``vigil_shared.datasets.write_dataset``, which stores them all or none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kafka import KafkaConsumer
from minio import Minio
from minio.error import S3Error
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_shared.dataset_groups import (
    DEFAULT_GAP_S,
    DEFAULT_SEGMENT_S,
    event_group,
    group_by_time,
)
from vigil_shared.datasets import LABEL_PATTERN, NewImage
from vigil_shared.db.models import Event
from vigil_shared.frame_log import FrameLogError, camera_frames
from vigil_shared.schemas.events import snapshot_keys
from vigil_shared.storage import get_bytes

READ_DEADLINE_S = 60.0
ABNORMAL = "abnormal"
LABEL = re.compile(LABEL_PATTERN)
NORMAL = "normal"


class SourceError(ValueError):
    """The images cannot be gathered as asked; the message says why and what to change."""


@dataclass(frozen=True)
class FrameRange:
    camera_id: str
    start: datetime
    end: datetime
    every_n: int
    label: str
    gap_s: float = DEFAULT_GAP_S
    segment_s: float = DEFAULT_SEGMENT_S


def frames_from_topic(
    *, consumer: KafkaConsumer, topic: str, wanted: FrameRange, max_frames: int
) -> list[NewImage]:
    """Every ``every_n``-th frame of a camera captured in [start, end], oldest first, grouped
    into time segments (``vigil_shared.dataset_groups``) so that one camera's footage can be
    held out in part.

    The consumer is outside any group: partitions are assigned by hand and sought by time, so
    the read neither joins nor disturbs a consumer group.
    """
    try:
        frames = camera_frames(
            consumer=consumer,
            topic=topic,
            camera_id=wanted.camera_id,
            start=wanted.start,
            end=wanted.end,
            deadline_s=READ_DEADLINE_S,
        )
    except FrameLogError as exc:
        raise SourceError(str(exc)) from exc
    chosen = frames[:: wanted.every_n]
    if len(chosen) > max_frames:
        raise SourceError(
            f"{len(chosen)} frames match; the limit is {max_frames}: shorten the range or raise "
            "every_n"
        )
    images = [
        NewImage(
            data=data,
            extension=".jpg",
            group=wanted.camera_id,
            label=wanted.label,
            sequence=headers.seq,
            camera_id=wanted.camera_id,
            captured_at=headers.captured_at,
            source_name=f"{topic}/{headers.camera_id}/{headers.seq}",
        )
        for headers, data in chosen
    ]
    return group_by_time(images, gap_s=wanted.gap_s, segment_s=wanted.segment_s)


@dataclass(frozen=True)
class EventFilter:
    camera_ids: Sequence[str] | None  # None: every camera the key sees (all for unscoped keys)
    reviews: Sequence[str]
    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class EventImages:
    images: list[NewImage]
    skipped: list[str]  # event ids whose peak frame is not in S3 (snapshots were off)


def reviewed_event_frames(
    *, session: Session, s3: Minio, bucket: str, wanted: EventFilter, max_frames: int
) -> EventImages:
    """Reviewed events' raw peak frames: confirmed → its review label or ``abnormal``,
    false positive → ``normal``; each event its own group (``dataset_groups.event_group``)."""
    query = select(Event).where(Event.review.in_(list(wanted.reviews))).order_by(Event.started_at)
    if wanted.camera_ids is not None:
        query = query.where(Event.camera_id.in_(list(wanted.camera_ids)))
    if wanted.start is not None:
        query = query.where(Event.started_at >= wanted.start)
    if wanted.end is not None:
        query = query.where(Event.started_at <= wanted.end)
    events = list(session.scalars(query.limit(max_frames + 1)))
    if len(events) > max_frames:
        raise SourceError(f"more than {max_frames} events match; narrow the filters")
    unusable = [str(e.event_id) for e in events if not LABEL.fullmatch(_label(e))]
    if unusable:
        raise SourceError(
            f"the review label of event {', '.join(unusable[:5])} cannot be a dataset label "
            "(1-64 ASCII letters, digits, spaces, '.', '_' or '-'); review it again with one, or "
            "leave it out with start/end or camera_ids"
        )
    images, skipped = [], []
    for event in events:
        raw_key = snapshot_keys(camera_id=event.camera_id, event_id=event.event_id)[1]
        try:
            data = get_bytes(s3, bucket, raw_key)
        except S3Error as exc:
            if exc.code != "NoSuchKey":
                raise
            skipped.append(str(event.event_id))
            continue
        images.append(
            NewImage(
                data=data,
                extension=".jpg",
                group=event_group(event.camera_id, str(event.event_id)),
                label=_label(event),
                camera_id=event.camera_id,
                captured_at=event.captured_at,
                source_name=f"event {event.event_id}",
            )
        )
    return EventImages(images=images, skipped=skipped)


def _label(event: Event) -> str:
    if event.review == "false_positive":
        return NORMAL
    return event.review_label or ABNORMAL
