"""Reconciliation runs and quality check results, each kept with its history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Creates reconciliation_runs and quality_results with their history indexes."""
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("comparison_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=320), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
    )
    op.create_index(
        op.f("ix_reconciliation_runs_comparison_id_id"),
        "reconciliation_runs",
        ["comparison_id", "id"],
        unique=False,
    )
    op.create_table(
        "quality_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("check_id", sa.String(length=128), nullable=False),
        sa.Column("dataset", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_results")),
    )
    op.create_index(
        op.f("ix_quality_results_check_id_id"), "quality_results", ["check_id", "id"], unique=False
    )
    op.create_index(op.f("ix_quality_results_run_id"), "quality_results", ["run_id"], unique=False)


def downgrade() -> None:
    """Drops quality_results and reconciliation_runs."""
    op.drop_index(op.f("ix_quality_results_run_id"), table_name="quality_results")
    op.drop_index(op.f("ix_quality_results_check_id_id"), table_name="quality_results")
    op.drop_table("quality_results")
    op.drop_index(op.f("ix_reconciliation_runs_comparison_id_id"), table_name="reconciliation_runs")
    op.drop_table("reconciliation_runs")
