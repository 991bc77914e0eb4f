"""Event indexes for keyset pages and the live stream.

Pages are ordered by (started_at, event_id), per camera or fleet-wide, and the live stream
follows (updated_at, event_id). Indexes on exactly those keys let PostgreSQL read a page (first
or a million rows deep) as one index range, with no sort; the older (camera_id, started_at) and
(started_at) indexes are their prefixes and go.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_started_id", "events", ["started_at", "event_id"])
    op.create_index(
        "ix_events_camera_started_id", "events", ["camera_id", "started_at", "event_id"]
    )
    op.create_index("ix_events_updated_id", "events", ["updated_at", "event_id"])
    op.drop_index("ix_events_camera_started", "events")
    op.drop_index("ix_events_started", "events")


def downgrade() -> None:
    op.create_index("ix_events_started", "events", ["started_at"])
    op.create_index("ix_events_camera_started", "events", ["camera_id", "started_at"])
    op.drop_index("ix_events_updated_id", "events")
    op.drop_index("ix_events_camera_started_id", "events")
    op.drop_index("ix_events_started_id", "events")
