"""Replay jobs: ``replays`` (a model over a retained range, with its report) and
``replay_events`` (what it would have raised, apart from the live ``events``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("camera_ids", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("range_from", TS, nullable=False),
        sa.Column("range_to", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("report", postgresql.JSONB(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_replays_scope_key", "replays", ["scope_key"])
    op.create_index("ix_replays_created_id", "replays", ["created_at", "id"])
    op.create_table(
        "replay_events",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("replay_id", sa.Uuid(), nullable=False),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("frame_seq", sa.BigInteger(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("peak_score", sa.Float(), nullable=False),
        sa.Column("peak_frame_seq", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("label", sa.String(64), nullable=True),
    )
    op.create_index("ix_replay_events_scope_started", "replay_events", ["scope_key", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_replay_events_scope_started", "replay_events")
    op.drop_table("replay_events")
    op.drop_index("ix_replays_created_id", "replays")
    op.drop_index("ix_replays_scope_key", "replays")
    op.drop_table("replays")
