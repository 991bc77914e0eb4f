"""Camera masks and status; a camera's model lives only in ``model_assignments``.

``cameras.model_id`` duplicated what promotions write to ``model_assignments`` (scope = camera
id), so two writers could disagree. Its values move to ``model_assignments`` and the column is
dropped: the assignment, published on the assignment topic, is the one source of truth.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column(
        "cameras",
        sa.Column("masks", postgresql.JSONB(), nullable=False, server_default="[]"),
    )
    op.execute(
        "INSERT INTO model_assignments (scope, production_model_id, updated_by, updated_at) "
        "SELECT id, model_id, 'migration-0004', now() FROM cameras WHERE model_id IS NOT NULL "
        "ON CONFLICT (scope) DO UPDATE SET production_model_id = EXCLUDED.production_model_id"
    )
    op.drop_index("ix_cameras_model_id", "cameras")
    op.drop_column("cameras", "model_id")
    op.create_table(
        "camera_status",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("since", TS, nullable=False),
        sa.Column("reported_at", TS, nullable=False),
        sa.Column("report_interval_s", sa.Float(), nullable=False),
        sa.Column("last_frame_at", TS, nullable=True),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("target_fps", sa.Float(), nullable=False),
        sa.Column("frames_published", sa.BigInteger(), nullable=False),
        sa.Column("frames_dropped", sa.BigInteger(), nullable=False),
        sa.Column("frames_gated", sa.BigInteger(), nullable=False),
        sa.Column("reconnects", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("camera_status")
    op.add_column(
        "cameras",
        sa.Column("model_id", sa.String(64), sa.ForeignKey("models.id"), nullable=True),
    )
    op.create_index("ix_cameras_model_id", "cameras", ["model_id"])
    op.execute(
        "UPDATE cameras SET model_id = a.production_model_id FROM model_assignments a "
        "WHERE a.scope = cameras.id"
    )
    op.drop_column("cameras", "masks")
