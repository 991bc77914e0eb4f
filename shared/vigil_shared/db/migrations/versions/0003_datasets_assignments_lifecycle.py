"""Datasets, job logs, model assignments and lineage, event lifecycle and review.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("manifest_key", sa.String(255), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("label_counts", postgresql.JSONB(), nullable=False),
        sa.Column("camera_ids", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_datasets_name_version"),
    )
    op.create_table(
        "job_logs",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
    )
    op.create_index("ix_job_logs_job_id_id", "job_logs", ["job_id", "id"])
    op.add_column("jobs", sa.Column("created_by", sa.String(128), nullable=True))
    op.add_column("models", sa.Column("parent_model_id", sa.String(64), nullable=True))
    op.add_column("models", sa.Column("dataset_name", sa.String(128), nullable=True))
    op.add_column("models", sa.Column("dataset_version", sa.String(64), nullable=True))
    op.create_table(
        "model_assignments",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("production_model_id", sa.String(64), sa.ForeignKey("models.id")),
        sa.Column("shadow_model_id", sa.String(64), sa.ForeignKey("models.id")),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "model_stage_changes",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("change_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("model_id", sa.String(64), nullable=True),
        sa.Column("previous_model_id", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_model_stage_changes_scope_id", "model_stage_changes", ["scope", "id"])
    _event_lifecycle_and_review()


def _event_lifecycle_and_review() -> None:
    # One row per event (an incident from start to end); rows written before lifecycles existed
    # were single-frame events: they start and end at their frame.
    op.add_column("events", sa.Column("started_at", TS, nullable=True))
    op.add_column("events", sa.Column("ended_at", TS, nullable=True))
    op.add_column("events", sa.Column("status", sa.String(8), nullable=True))
    op.add_column("events", sa.Column("label", sa.String(64), nullable=True))
    op.add_column("events", sa.Column("snapshot_key", sa.String(255), nullable=True))
    op.add_column("events", sa.Column("updated_at", TS, nullable=True))
    op.execute(
        "UPDATE events SET started_at = captured_at, ended_at = captured_at, status = 'ended', "
        "updated_at = stored_at"
    )
    op.alter_column("events", "started_at", nullable=False)
    op.alter_column("events", "status", nullable=False, server_default="open")
    op.alter_column("events", "updated_at", nullable=False, server_default=sa.func.now())
    op.add_column("events", sa.Column("review", sa.String(16), nullable=True))
    op.add_column("events", sa.Column("review_label", sa.String(64), nullable=True))
    op.add_column("events", sa.Column("review_note", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("reviewed_by", sa.String(128), nullable=True))
    op.add_column("events", sa.Column("reviewed_at", TS, nullable=True))
    op.create_index("ix_events_camera_started", "events", ["camera_id", "started_at"])
    op.create_index("ix_events_started", "events", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_events_started", "events")
    op.drop_index("ix_events_camera_started", "events")
    for column in (
        "reviewed_at",
        "reviewed_by",
        "review_note",
        "review_label",
        "review",
        "updated_at",
        "snapshot_key",
        "label",
        "status",
        "ended_at",
        "started_at",
    ):
        op.drop_column("events", column)
    op.drop_table("model_stage_changes")
    op.drop_table("model_assignments")
    for column in ("dataset_version", "dataset_name", "parent_model_id"):
        op.drop_column("models", column)
    op.drop_column("jobs", "created_by")
    op.drop_table("job_logs")
    op.drop_table("datasets")
