"""An index on events.session_id.

A rollup with a distinct count of sessions keeps the cells of every session seen in more than
one; refreshing a day re-reads the rows of the sessions that day touched, wherever they lie,
so that the refresh costs that day's sessions rather than a scan of the events.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_events_session_id"), "events", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_events_session_id"), table_name="events")
