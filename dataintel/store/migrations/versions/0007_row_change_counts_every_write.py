"""row_change_counts counts every written row (inserts and deletes too); lighter rollup state.

Rollups used to compare a partition's source rows with what they were built from by reading
the source at query time (count, latest time, key sum over the month's rows: a scan that
grew with the table). Now the store counts every row inserted, deleted or updated, per table
and UTC month of the row's time, so a partition's freshness is a read of a few counters.
The counters only grow: a partition whose counters equal those recorded at its build has
seen no write since. Existing rows are counted once here, so every month that holds rows has
a counter. The rollup state is recreated without the scanned parts (a recorded state from
before cannot prove a partition current under the new counters; rollups are derived data,
the next build rebuilds them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
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


def _sqlite_period(table: str, row: str) -> str:
    found = _ROW_TIME[table]
    if found is None:
        return _ALL_PERIODS
    return f"coalesce(strftime('%Y-%m', {found.format(row=row)}), {_ALL_PERIODS})"


def _postgres_period(table: str, row: str) -> str:
    found = _ROW_TIME[table]
    if found is None:
        return _ALL_PERIODS
    moment = found.format(row=row)
    return f"coalesce(to_char({moment} AT TIME ZONE 'UTC', 'YYYY-MM'), {_ALL_PERIODS})"


def _sqlite_trigger(table: str, operation: str) -> str:
    counted = " ".join(
        f"INSERT INTO row_change_counts (table_name, period, changes)"
        f" VALUES ('{table}', {_sqlite_period(table, row)}, 1)"
        " ON CONFLICT (table_name, period) DO UPDATE SET changes = changes + 1;"
        for row in _OPERATIONS[operation][0]
    )
    return (
        f"CREATE TRIGGER row_changes_{table}_{operation} AFTER {operation.upper()} ON {table}"
        f" FOR EACH ROW BEGIN {counted} END"
    )


def _postgres_trigger(table: str, operation: str) -> list[str]:
    # Statement-level, over the transition tables: one upsert per period, not per row
    # (COPY fires them too, so a bulk load costs one grouped insert per table).
    counted = " ".join(
        f"INSERT INTO row_change_counts AS counts (table_name, period, changes)"
        f" SELECT '{table}', {_postgres_period(table, 'changed')}, count(*)"
        f" FROM {rows} AS changed GROUP BY 2 ORDER BY 2"
        " ON CONFLICT (table_name, period)"
        " DO UPDATE SET changes = counts.changes + excluded.changes;"
        for rows in _OPERATIONS[operation][1]
    )
    name = f"row_changes_{table}_{operation}"
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN {counted} RETURN NULL; END $$",
        f"CREATE TRIGGER {name} AFTER {operation.upper()} ON {table}"
        f" REFERENCING {_REFERENCING[operation]}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()",
    ]


def _count_existing_rows(table: str, dialect: str) -> None:
    period = (_postgres_period if dialect == "postgresql" else _sqlite_period)(table, table)
    op.execute(
        f"INSERT INTO row_change_counts AS counts (table_name, period, changes)"
        f" SELECT '{table}', {period}, count(*) FROM {table} GROUP BY 2"
        " ON CONFLICT (table_name, period) DO UPDATE SET changes = counts.changes"
        " + excluded.changes"
        if dialect == "postgresql"
        else f"INSERT INTO row_change_counts (table_name, period, changes)"
        f" SELECT '{table}', {period}, count(*) FROM {table} WHERE true GROUP BY 2"
        " ON CONFLICT (table_name, period) DO UPDATE SET changes = changes + excluded.changes"
    )


def _drop_triggers(dialect: str, names: Sequence[tuple[str, str]]) -> None:
    for table, name in names:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _state_table(*scanned: sa.Column[object]) -> None:
    op.drop_table(_STATE)
    op.create_table(
        _STATE,
        sa.Column("rollup", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.String(length=7), nullable=False),
        sa.Column("definition", sa.String(length=64), nullable=False),
        *scanned,
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rollup", "partition", name=op.f(f"pk_{_STATE}")),
    )


def upgrade() -> None:
    """Counts inserts, deletes and updates; counts the rows already there; new rollup state."""
    dialect = op.get_bind().dialect.name
    _drop_triggers(dialect, [(table, f"row_changes_{table}") for table in _ROW_TIME])
    for table in _ROW_TIME:
        _count_existing_rows(table, dialect)
        for operation in _OPERATIONS:
            if dialect == "postgresql":
                for statement in _postgres_trigger(table, operation):
                    op.execute(statement)
            else:
                op.execute(_sqlite_trigger(table, operation))
    _state_table(sa.Column("rows", sa.BigInteger(), nullable=False))


def downgrade() -> None:
    """Back to counting updates only (0006's triggers) and the scanned rollup state."""
    dialect = op.get_bind().dialect.name
    _drop_triggers(
        dialect,
        [
            (table, f"row_changes_{table}_{operation}")
            for table in _ROW_TIME
            for operation in _OPERATIONS
        ],
    )
    for table in _ROW_TIME:
        if dialect == "postgresql":
            for statement in _postgres_trigger(table, "update"):
                op.execute(statement.replace(f"row_changes_{table}_update", f"row_changes_{table}"))
        else:
            op.execute(
                _sqlite_trigger(table, "update").replace(
                    f"row_changes_{table}_update", f"row_changes_{table}"
                )
            )
    _state_table(
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("max_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("key_sum", sa.BigInteger(), nullable=False),
    )
