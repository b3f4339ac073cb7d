"""Cache tag versions in the store, so that servers without Redis see the CLI's writes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Creates cache_tag_versions and its serial index."""
    op.create_table(
        "cache_tag_versions",
        sa.Column("tag", sa.String(length=512), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("bumped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tag", name=op.f("pk_cache_tag_versions")),
    )
    op.create_index(
        op.f("ix_cache_tag_versions_serial"), "cache_tag_versions", ["serial"], unique=False
    )


def downgrade() -> None:
    """Drops cache_tag_versions."""
    op.drop_index(op.f("ix_cache_tag_versions_serial"), table_name="cache_tag_versions")
    op.drop_table("cache_tag_versions")
