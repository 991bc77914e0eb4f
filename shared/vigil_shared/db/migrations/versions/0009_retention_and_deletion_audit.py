"""Retention and deletion: each camera's retention, datasets' footage time, the deletion audit
log and the ids of deleted events.

``cameras.retention_days`` is the camera's policy (NULL: the global maximum);
``datasets.footage_from`` the capture time of a dataset's oldest camera frame, filled by the
retention sweep; ``deletion_audit`` says who deleted what, when and why; ``deleted_events``
keeps the event sink from storing a deleted event again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("cameras", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column("datasets", sa.Column("footage_from", TS, nullable=True))
    op.create_table(
        "deletion_audit",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_deletion_audit_at_id", "deletion_audit", ["at", "id"])
    op.create_table(
        "deleted_events",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("deleted_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_deleted_events_deleted_at", "deleted_events", ["deleted_at"])


def downgrade() -> None:
    op.drop_index("ix_deleted_events_deleted_at", "deleted_events")
    op.drop_table("deleted_events")
    op.drop_index("ix_deletion_audit_at_id", "deletion_audit")
    op.drop_table("deletion_audit")
    op.drop_column("datasets", "footage_from")
    op.drop_column("cameras", "retention_days")
