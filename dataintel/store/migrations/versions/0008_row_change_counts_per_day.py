"""row_change_counts per table and UTC day (was UTC month); rollup state with day keys.

A rollup refreshed after a day of new rows used to rebuild that day's whole month, because
the counters could say no more than "this month changed". Now every written row (inserted,
deleted, or updated: old and new) is counted under the UTC day of its time ('YYYY-MM-DD';
``*`` still for tables without one), so a build can rebuild just the days that changed. The
counters are recreated with the longer key and the rows already in the tables are counted
once per day, so every day that holds rows has a counter. The rollup state is recreated with
room for day keys: a state recorded against month counters cannot prove a day current
(rollups are derived data, the next build rebuilds them).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ALL_PERIODS = "'*'"
# Per table, the SQL of a written row's time from a row alias; None: no time of its own.
_ROW_TIME: dict[str, str | None] = {
    "orders": "{row}.placed_at",
    "events": "{row}.occurred_at",
    "order_items": "(SELECT placed_at FROM orders WHERE orders.id = {row}.order_id)",
    "customers": None,
    "products": None,
    "ledger_entries": "{row}.booked_at",
}
_STATE = "analytics_rollup_state"
_COUNTS = "row_change_counts"
# Per operation, the rows a trigger counts: SQLite's row aliases, PostgreSQL's transition tables.
_OPERATIONS = {
    "insert": (("NEW",), ("new_rows",)),
    "delete": (("OLD",), ("old_rows",)),
    "update": (("OLD", "NEW"), ("old_rows", "new_rows")),
}
_REFERENCING = {
    "insert": "NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
}


class _Period:
    """A period of the counters: its key's length and its format on each dialect."""

    def __init__(self, length: int, sqlite: str, postgres: str) -> None:
        self.length = length
        self.sqlite = sqlite
        self.postgres = postgres


_DAY = _Period(10, "%Y-%m-%d", "YYYY-MM-DD")
# 0007's, for the downgrade.
_MONTH = _Period(7, "%Y-%m", "YYYY-MM")


def _sqlite_period(table: str, row: str, period: _Period) -> str:
    found = _ROW_TIME[table]
    if found is None:
        return _ALL_PERIODS
    return f"coalesce(strftime('{period.sqlite}', {found.format(row=row)}), {_ALL_PERIODS})"


def _postgres_period(table: str, row: str, period: _Period) -> str:
    found = _ROW_TIME[table]
    if found is None:
        return _ALL_PERIODS
    moment = found.format(row=row)
    return f"coalesce(to_char({moment} AT TIME ZONE 'UTC', '{period.postgres}'), {_ALL_PERIODS})"


def _sqlite_trigger(table: str, operation: str, period: _Period) -> str:
    counted = " ".join(
        f"INSERT INTO {_COUNTS} (table_name, period, changes)"
        f" VALUES ('{table}', {_sqlite_period(table, row, period)}, 1)"
        " ON CONFLICT (table_name, period) DO UPDATE SET changes = changes + 1;"
        for row in _OPERATIONS[operation][0]
    )
    return (
        f"CREATE TRIGGER row_changes_{table}_{operation} AFTER {operation.upper()} ON {table}"
        f" FOR EACH ROW BEGIN {counted} END"
    )


def _postgres_trigger(table: str, operation: str, period: _Period) -> list[str]:
    # Statement-level, over the transition tables: one upsert per day, not per row, the days
    # in a fixed order so that two statements cannot deadlock on them. CREATE OR REPLACE:
    # 0007's functions of the same names get the new bodies.
    counted = " ".join(
        f"INSERT INTO {_COUNTS} AS counts (table_name, period, changes)"
        f" SELECT '{table}', {_postgres_period(table, 'changed', period)}, count(*)"
        f" FROM {rows} AS changed GROUP BY 2 ORDER BY 2"
        " ON CONFLICT (table_name, period)"
        " DO UPDATE SET changes = counts.changes + excluded.changes;"
        for rows in _OPERATIONS[operation][1]
    )
    name = f"row_changes_{table}_{operation}"
    return [
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN {counted} RETURN NULL; END $$",
        f"CREATE TRIGGER {name} AFTER {operation.upper()} ON {table}"
        f" REFERENCING {_REFERENCING[operation]}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


def _count_existing_rows(table: str, dialect: str, period: _Period) -> None:
    if dialect == "postgresql":
        key = _postgres_period(table, table, period)
        op.execute(
            f"INSERT INTO {_COUNTS} (table_name, period, changes)"
            f" SELECT '{table}', {key}, count(*) FROM {table} GROUP BY 2"
        )
    else:
        key = _sqlite_period(table, table, period)
        op.execute(
            f"INSERT INTO {_COUNTS} (table_name, period, changes)"
            f" SELECT '{table}', {key}, count(*) FROM {table} WHERE true GROUP BY 2"
        )


def _drop_triggers(dialect: str) -> None:
    for table in _ROW_TIME:
        for operation in _OPERATIONS:
            name = f"row_changes_{table}_{operation}"
            if dialect == "postgresql":
                op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _counters_per(period: _Period, dialect: str) -> None:
    """Recreates the counters with the period's keys, counts the rows there, and the triggers."""
    _drop_triggers(dialect)
    op.drop_table(_COUNTS)
    op.create_table(
        _COUNTS,
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=period.length), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("table_name", "period", name=op.f(f"pk_{_COUNTS}")),
    )
    for table in _ROW_TIME:
        _count_existing_rows(table, dialect, period)
        for operation in _OPERATIONS:
            if dialect == "postgresql":
                for statement in _postgres_trigger(table, operation, period):
                    op.execute(statement)
            else:
                op.execute(_sqlite_trigger(table, operation, period))


def _state_table(period: _Period) -> None:
    op.drop_table(_STATE)
    op.create_table(
        _STATE,
        sa.Column("rollup", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.String(length=period.length), nullable=False),
        sa.Column("definition", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rollup", "partition", name=op.f(f"pk_{_STATE}")),
    )


def upgrade() -> None:
    """Counts writes per UTC day; counts the rows already there; new rollup state."""
    dialect = op.get_bind().dialect.name
    _counters_per(_DAY, dialect)
    _state_table(_DAY)


def downgrade() -> None:
    """Back to 0007's counters per UTC month (recounted from the rows there) and state."""
    dialect = op.get_bind().dialect.name
    _counters_per(_MONTH, dialect)
    _state_table(_MONTH)
