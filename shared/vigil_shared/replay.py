"""Replay jobs' pure parts: what names a replay, its events' ids, and its report.

A replay scores a time range of retained frames (the frames topic is the replay log,
``vigil_shared.frame_log``) with any registry model and runs the live event lifecycle over the
scores. Its events are namespaced: their ids derive from the replay's scope (model, cameras,
range) and the lifecycle's own id of the event (which names its first frame), so they never
collide with a live event's id, and a second run of the same replay gives the same ids.

The report sets what the model would have raised against what production raised in the same
range and what reviewers said of production's events.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

REPLAY_NAMESPACE = uuid.UUID("3b0c6c4e-8d0e-4f59-9a3c-2f7d61a5e0b4")


class ReplayStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def scope_key(*, model_id: str, camera_ids: Sequence[str], start: datetime, end: datetime) -> str:
    """The same model, cameras (in any order) and range: the same key (sha256, hex)."""
    canonical = json.dumps(
        [model_id, sorted(set(camera_ids)), start.isoformat(), end.isoformat()],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay_event_id(*, scope: str, lifecycle_event_id: uuid.UUID) -> uuid.UUID:
    """A replay event's id: its replay's scope and the lifecycle's id of the event."""
    return uuid.uuid5(REPLAY_NAMESPACE, f"{scope}/{lifecycle_event_id}")


@dataclass(frozen=True)
class Span:
    """An event as the report sees it: whose, when, and (production's) the review."""

    event_id: str
    camera_id: str
    started_at: datetime
    ended_at: datetime | None
    review: str | None = None

    def overlaps(self, other: Span) -> bool:
        mine = self.ended_at or self.started_at
        theirs = other.ended_at or other.started_at
        return (
            self.camera_id == other.camera_id
            and self.started_at <= theirs
            and other.started_at <= mine
        )


def _ids(spans: Sequence[Span]) -> list[str]:
    return [span.event_id for span in spans]


def compare(*, frames: int, replayed: Sequence[Span], production: Sequence[Span]) -> dict[str, Any]:
    """The report's figures: the replay's events against production's (overlap on the same
    camera), and production's reviewed events the replayed model would or would not raise."""

    def raised(event: Span) -> bool:
        return any(event.overlaps(mine) for mine in replayed)

    matched = [p for p in production if raised(p)]
    confirmed = [p for p in production if p.review == "confirmed"]
    rejected = [p for p in production if p.review == "false_positive"]
    return {
        "frames_scored": frames,
        "replay_events": len(replayed),
        "production_events": len(production),
        "replay_only": _ids([r for r in replayed if not any(r.overlaps(p) for p in production)]),
        "production_matched": _ids(matched),
        "production_missed": _ids([p for p in production if p not in matched]),
        "reviews": {
            "confirmed": len(confirmed),
            "confirmed_raised": _ids([p for p in confirmed if raised(p)]),
            "confirmed_missed": _ids([p for p in confirmed if not raised(p)]),
            "false_positive": len(rejected),
            "false_positives_raised": _ids([p for p in rejected if raised(p)]),
            "false_positives_avoided": _ids([p for p in rejected if not raised(p)]),
            "unreviewed": sum(p.review is None for p in production),
        },
    }


def retention_note(*, frames: int, retention_hours: float) -> str | None:
    """Why a replay found nothing to score, when it did not."""
    if frames:
        return None
    return (
        "no frames retained in this range for these cameras: the frames topic keeps frames "
        f"for {retention_hours:g} h (VIGIL_KAFKA_FRAMES_RETENTION_HOURS), so only a range "
        "within that span, while ingest was running, can be replayed"
    )
