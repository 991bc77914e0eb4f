"""Tables of the live loop (docs/live-loop.md): shadow reports and rollback watches.

Kept apart from ``models.py`` (the same ``Base``, registered by ``vigil_shared.db``) because the
loop process owns them: only it writes them, the API reads them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vigil_shared.db.models import Base


class ShadowReport(Base):
    """A span of one camera's frames scored by a shadow model next to production, judged.

    The id is derived from (camera, shadow model, first frame offset), so a span replayed after
    a crash writes the same report once. ``figures`` holds what the verdict was computed from;
    ``reasons`` why it failed (empty when it passed)."""

    __tablename__ = "shadow_reports"
    __table_args__ = (
        Index("ix_shadow_reports_camera_created", "camera_id", "created_at"),
        Index("ix_shadow_reports_created_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    shadow_model_id: Mapped[str] = mapped_column(String(128))
    production_model_id: Mapped[str] = mapped_column(String(128))
    partition: Mapped[int] = mapped_column(Integer)
    first_offset: Mapped[int] = mapped_column(BigInteger)
    last_offset: Mapped[int] = mapped_column(BigInteger)
    window_from: Mapped[datetime]
    window_to: Mapped[datetime]
    frames: Mapped[int] = mapped_column(Integer)
    agreement: Mapped[float] = mapped_column(Float)
    would_be_events: Mapped[int] = mapped_column(Integer)
    production_events: Mapped[int] = mapped_column(Integer)
    score_drift: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSONB, default=list)
    figures: Mapped[dict[str, Any]]
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    promotion_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RollbackWatch(Base):
    """The watch over one promotion: ``watching`` until ``until``, then ``kept``; or
    ``rolled_back`` (``reason`` names the limit crossed) or ``superseded`` by a later change."""

    __tablename__ = "rollback_watches"
    __table_args__ = (Index("ix_rollback_watches_status", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    change_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    scope: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(128))
    previous_model_id: Mapped[str | None] = mapped_column(String(128))
    promoted_at: Mapped[datetime]
    until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    checked_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
