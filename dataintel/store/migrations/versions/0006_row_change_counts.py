"""Counts of in-place updates per table and UTC month, kept by triggers; the rollup state.

Analytics rollups compare a partition's source rows with what they were built from by
count, latest time and key sum: inserts and deletes change those, updates in place (an
order's total, a customer's region) do not. These triggers count every updated row per
table and per UTC month of the row's time (``*`` for tables without one: a customer or a
product reaches every month), so a rollup sees that a partition changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALL_PERIODS = "'*'"
# Per table, the SQL that gives an updated row's UTC month ('YYYY-MM') from a row alias,
# per dialect; None: the row has no time of its own.
_ROW_TIME: dict[str, tuple[str, str] | None] = {
    "orders": ("{row}.placed_at", "{row}.placed_at"),
    "events": ("{row}.occurred_at", "{row}.occurred_at"),
    "order_items": (
        "(SELECT placed_at FROM orders WHERE orders.id = {row}.order_id)",
        "(SELECT placed_at FROM orders WHERE orders.id = {row}.order_id)",
    ),
    "customers": None,
    "products": None,
    "ledger_entries": ("{row}.booked_at", "{row}.booked_at"),
}
_STATE = "analytics_rollup_state"


def _sqlite_period(table: str, row: str) -> str:
    found = _ROW_TIME[table]
    if found is None:
        return _ALL_PERIODS
    return f"coalesce(strftime('%Y-%m', {found[0].format(row=row)}), {_ALL_PERIODS})"


def _postgres_period(table: str, row: str) -> str:
    found = _ROW_TIME[table]
    if found is None:
        return _ALL_PERIODS
    moment = found[1].format(row=row)
    return f"coalesce(to_char({moment} AT TIME ZONE 'UTC', 'YYYY-MM'), {_ALL_PERIODS})"


def _sqlite_triggers(table: str) -> list[str]:
    counted = [
        f"INSERT INTO row_change_counts (table_name, period, changes)"
        f" VALUES ('{table}', {_sqlite_period(table, row)}, 1)"
        " ON CONFLICT (table_name, period) DO UPDATE SET changes = changes + 1;"
        for row in ("OLD", "NEW")
    ]
    return [
        f"CREATE TRIGGER row_changes_{table} AFTER UPDATE ON {table} FOR EACH ROW"
        f" BEGIN {' '.join(counted)} END"
    ]


def _postgres_triggers(table: str) -> list[str]:
    # Statement-level, over the transition tables: one upsert per period, not per row.
    counted = " ".join(
        f"INSERT INTO row_change_counts AS counts (table_name, period, changes)"
        f" SELECT '{table}', {_postgres_period(table, 'changed')}, count(*)"
        f" FROM {rows} AS changed GROUP BY 2"
        " ON CONFLICT (table_name, period)"
        " DO UPDATE SET changes = counts.changes + excluded.changes;"
        for rows in ("old_rows", "new_rows")
    )
    return [
        f"CREATE FUNCTION row_changes_{table}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN {counted} RETURN NULL; END $$",
        f"CREATE TRIGGER row_changes_{table} AFTER UPDATE ON {table}"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        f" FOR EACH STATEMENT EXECUTE FUNCTION row_changes_{table}()",
    ]


def upgrade() -> None:
    """Creates row_change_counts, the update triggers and the rollup state table."""
    op.create_table(
        "row_change_counts",
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "period", name=op.f("pk_row_change_counts")),
    )
    dialect = op.get_bind().dialect.name
    triggers = _postgres_triggers if dialect == "postgresql" else _sqlite_triggers
    for table in _ROW_TIME:
        for statement in triggers(table):
            op.execute(statement)
    # Rollup state recorded without update counts cannot prove a partition current: it is
    # replaced, and the next build rebuilds every partition (rollups are derived data).
    op.execute(f"DROP TABLE IF EXISTS {_STATE}")
    op.create_table(
        _STATE,
        sa.Column("rollup", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.String(length=7), nullable=False),
        sa.Column("definition", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("max_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_sum", sa.BigInteger(), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rollup", "partition", name=op.f(f"pk_{_STATE}")),
    )


def downgrade() -> None:
    """Drops the triggers, row_change_counts and the rollup state."""
    dialect = op.get_bind().dialect.name
    for table in _ROW_TIME:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS row_changes_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS row_changes_{table}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS row_changes_{table}")
    op.drop_table("row_change_counts")
    op.drop_table(_STATE)
