"""GDPR subject requests and the subjects suppressed from exports.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Creates subject_requests and export_suppressions."""
    op.create_table(
        "subject_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extended_months", sa.Integer(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("denial_reason", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_requests")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_subject_requests_status"), "subject_requests", ["status"], unique=False
    )
    op.create_index(
        op.f("ix_subject_requests_customer_id"), "subject_requests", ["customer_id"], unique=False
    )
    op.create_table(
        "export_suppressions",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("subject_request_id", sa.Integer(), nullable=False),
        sa.Column("suppressed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_export_suppressions")),
    )


def downgrade() -> None:
    """Drops export_suppressions and subject_requests."""
    op.drop_table("export_suppressions")
    op.drop_index(op.f("ix_subject_requests_customer_id"), table_name="subject_requests")
    op.drop_index(op.f("ix_subject_requests_status"), table_name="subject_requests")
    op.drop_table("subject_requests")
