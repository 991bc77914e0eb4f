"""The live loop: ``shadow_reports`` (a shadow model judged on a span of live frames) and
``rollback_watches`` (each promotion watched, rolled back past its limits).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shadow_reports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("shadow_model_id", sa.String(128), nullable=False),
        sa.Column("production_model_id", sa.String(128), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("first_offset", sa.BigInteger(), nullable=False),
        sa.Column("last_offset", sa.BigInteger(), nullable=False),
        sa.Column("window_from", TS, nullable=False),
        sa.Column("window_to", TS, nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("agreement", sa.Float(), nullable=False),
        sa.Column("would_be_events", sa.Integer(), nullable=False),
        sa.Column("production_events", sa.Integer(), nullable=False),
        sa.Column("score_drift", sa.Float(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("reasons", postgresql.JSONB(), nullable=False),
        sa.Column("figures", postgresql.JSONB(), nullable=False),
        sa.Column("promoted", sa.Boolean(), nullable=False),
        sa.Column("promotion_note", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "ix_shadow_reports_camera_created", "shadow_reports", ["camera_id", "created_at"]
    )
    op.create_index("ix_shadow_reports_created_id", "shadow_reports", ["created_at", "id"])
    op.create_table(
        "rollback_watches",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("change_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("previous_model_id", sa.String(128), nullable=True),
        sa.Column("promoted_at", TS, nullable=False),
        sa.Column("until", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("figures", postgresql.JSONB(), nullable=False),
        sa.Column("checked_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
    )
    op.create_index("ix_rollback_watches_status", "rollback_watches", ["status"])


def downgrade() -> None:
    op.drop_index("ix_rollback_watches_status", "rollback_watches")
    op.drop_table("rollback_watches")
    op.drop_index("ix_shadow_reports_created_id", "shadow_reports")
    op.drop_index("ix_shadow_reports_camera_created", "shadow_reports")
    op.drop_table("shadow_reports")
