"""Stage changes say why: ``model_stage_changes.reason`` (an admin's override of the evaluation
gate, the limit an automatic rollback crossed); NULL for a plain request.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("model_stage_changes", sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("model_stage_changes", "reason")
