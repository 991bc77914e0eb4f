"""Dataset versions record their owner scope; API keys say whether a service uses them and when
they were last used.

``datasets.owner_scope`` is the camera scope of the key that made the version (NULL: an unscoped
key, fleet-wide); a camera-scoped key may add versions only to datasets its scope owns. Versions
made before this migration get NULL: which key made them is not known, so they count as
fleet-wide and only unscoped keys may add to those datasets.

``api_keys.service`` marks a key a service runs with (ingest): revoking it needs ``force``.
``api_keys.last_used_at`` is when a request last used the key, so an admin sees a key in use.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("datasets", sa.Column("owner_scope", postgresql.ARRAY(sa.String(64))))
    op.add_column(
        "api_keys",
        sa.Column("service", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("api_keys", "last_used_at")
    op.drop_column("api_keys", "service")
    op.drop_column("datasets", "owner_scope")
