"""Tables of replay jobs (docs/live-loop.md, "Replay"): the jobs and the events they raised.

Kept apart from the live ``events`` table on purpose: a replay's events are what a model *would*
have raised on retained frames, and must never be mistaken for alarms. The trainer writes both
tables; the API reads them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, Index, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from vigil_shared.db.models import Base


class Replay(Base):
    """One replay run: a model over a time range of chosen cameras' retained frames.

    ``scope_key`` names what was replayed (model, cameras, range): two runs of the same replay
    share it, and so share their events' ids. ``report`` holds the comparison with production's
    live events and the reviews, once the run has finished."""

    __tablename__ = "replays"
    __table_args__ = (Index("ix_replays_created_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    scope_key: Mapped[str] = mapped_column(String(64), index=True)
    model_id: Mapped[str] = mapped_column(String(128))
    camera_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    range_from: Mapped[datetime]
    range_to: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ReplayEvent(Base):
    """An event a replay's model would have raised; upserted by its deterministic id, so a
    second run of the same replay leaves one row per event (``replay_id``: the latest run)."""

    __tablename__ = "replay_events"
    __table_args__ = (Index("ix_replay_events_scope_started", "scope_key", "started_at"),)

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(64))
    replay_id: Mapped[uuid.UUID]
    camera_id: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(128))
    frame_seq: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    peak_score: Mapped[float] = mapped_column(Float)
    peak_frame_seq: Mapped[int] = mapped_column(BigInteger)
    threshold: Mapped[float] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(64))
