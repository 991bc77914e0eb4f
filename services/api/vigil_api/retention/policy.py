"""How long each camera's footage lives: its own ``retention_days``, capped by the global
maximum (``VIGIL_API_RETENTION_MAX_DAYS``), which also applies to a camera with no policy or no
registration (events of a camera ingest runs without the API).

Footage means events (from their start), their snapshots, and frames in datasets built from a
camera (from the dataset's oldest frame). Frames on Kafka expire by the topic's retention, one
setting for every camera: ``kafka_outlives`` says where that is longer than a camera's policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_shared.db.models import Camera

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    max_days: int
    cameras: dict[str, int]
    """Registered cameras' days, already capped by ``max_days``."""

    def days(self, camera_id: str) -> int:
        return self.cameras.get(camera_id, self.max_days)

    def strictest(self, camera_ids: Iterable[str]) -> int:
        """The shortest policy among these cameras (a dataset mixing them keeps to it)."""
        return min((self.days(c) for c in camera_ids), default=self.max_days)

    def cutoff(self, days: int, now: datetime) -> datetime:
        return now - days * DAY

    def shortest(self) -> int:
        return min([self.max_days, *self.cameras.values()])


def load_policy(session: Session, *, max_days: int) -> Policy:
    rows = session.execute(select(Camera.id, Camera.retention_days)).all()
    return Policy(
        max_days=max_days,
        cameras={camera_id: min(days or max_days, max_days) for camera_id, days in rows},
    )


def kafka_outlives(policy: Policy, *, frames_ms: int | None, events_ms: int | None) -> list[str]:
    """What the topics keep longer than the policy allows, each with the setting to change."""
    problems = []
    shortest = policy.shortest()
    if frames_ms is not None and frames_ms > shortest * DAY.total_seconds() * 1000:
        problems.append(
            f"the frames topic keeps frames {frames_ms / 3_600_000:g} h, longer than the "
            f"shortest camera policy ({shortest} days): lower VIGIL_KAFKA_FRAMES_RETENTION_HOURS "
            "and the topic's retention.ms (docs/operations.md#retention-and-disk-sizing)"
        )
    if events_ms is not None and events_ms > policy.max_days * DAY.total_seconds() * 1000:
        problems.append(
            f"the events topic keeps event messages {events_ms / 86_400_000:g} days, longer "
            f"than VIGIL_API_RETENTION_MAX_DAYS ({policy.max_days}): lower "
            "VIGIL_KAFKA_EVENTS_RETENTION_DAYS and the topic's retention.ms"
        )
    return problems


def retention_problem(days: int | None, *, max_days: int, frames_hours: float) -> str | None:
    """Why a camera may not have this ``retention_days``; None when it may."""
    if days is None:
        return None
    if days > max_days:
        return (
            f"at most {max_days} days: VIGIL_API_RETENTION_MAX_DAYS, the global maximum, "
            "caps every camera's retention"
        )
    if days * 24 < frames_hours:
        return (
            f"frames stay {frames_hours:g} h on Kafka for every camera "
            "(VIGIL_KAFKA_FRAMES_RETENTION_HOURS): a camera's retention cannot be shorter; "
            "lower that setting and the frames topic's retention.ms first"
        )
    return None
