"""The evaluation gate: ``evaluations`` (a candidate and production on the same held-out
evidence), ``gate_policies`` (per scope) and ``gate_decisions`` (each check, with its figures).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("production_model_id", sa.String(64), nullable=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("camera_ids", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("dataset_name", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.String(64), nullable=False),
        sa.Column(
            "job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("groups", postgresql.ARRAY(sa.String(256)), nullable=False),
        sa.Column("metrics", postgresql.JSONB(), nullable=False),
        sa.Column("production_metrics", postgresql.JSONB(), nullable=True),
        sa.Column("detail", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    )
    op.create_index("ix_evaluations_model_created", "evaluations", ["model_id", "created_at"])
    op.create_table(
        "gate_policies",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("auroc_tolerance", sa.Float(), nullable=True),
        sa.Column("recall_tolerance", sa.Float(), nullable=True),
        sa.Column("false_alarms_per_hour_tolerance", sa.Float(), nullable=True),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    )
    op.create_table(
        "gate_decisions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("model_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column(
            "evaluation_id",
            sa.Uuid(),
            sa.ForeignKey("evaluations.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("production_model_id", sa.String(64), nullable=True),
        sa.Column("policy", postgresql.JSONB(), nullable=True),
        sa.Column("checks", postgresql.JSONB(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    )
    op.create_index("ix_gate_decisions_model_created", "gate_decisions", ["model_id", "created_at"])


def downgrade() -> None:
    op.drop_table("gate_decisions")
    op.drop_table("gate_policies")
    op.drop_table("evaluations")
