"""Camera scoring: inference's latest ``vigil.scoring-status.v1`` record per camera.

The API shows it with the camera (``scoring``) and, for the cameras whose assigned model cannot
be loaded, with the model (``load_problems``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "camera_scoring",
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("model_kind", sa.String(16), nullable=False),
        sa.Column("assigned_model_id", sa.String(128), nullable=True),
        sa.Column("shadow_model_id", sa.String(128), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_camera_scoring_assigned_model_id", "camera_scoring", ["assigned_model_id"])


def downgrade() -> None:
    op.drop_index("ix_camera_scoring_assigned_model_id", "camera_scoring")
    op.drop_table("camera_scoring")
