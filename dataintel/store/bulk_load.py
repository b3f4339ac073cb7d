"""Loading many rows fast: through the driver itself, with SQLite's row triggers set aside.

The seed writes millions of rows at ``--scale 100``; SQLAlchemy's ``insert()`` over lists of
dicts spends most of that time in Python. Here the values go through each column's own bind
processing (so they are stored exactly as an ``insert()`` would store them) and then to
asyncpg's COPY or sqlite3's ``executemany`` in large chunks.

SQLite runs ``row_change_counts``' triggers once per row (a correlated lookup for order
items): a load can drop them for its transaction and record the counts itself instead
(``add_written_counts``), then recreate them from their saved definitions. PostgreSQL's
triggers are per statement over the transition tables, COPY included, so they stay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.store import tables

CHUNK_ROWS = 50_000
"""Rows per driver call: large enough that the per-call cost vanishes, small enough to stream."""


async def insert_rows(
    connection: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Inserts rows (all with the same keys) in the connection's transaction."""
    if not rows:
        return
    names = list(rows[0])
    dialect = connection.dialect
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]

    def stored(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            row[name] if process is None else process(row[name])
            for name, process in zip(names, processors, strict=True)
        )

    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    statement = (
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    )
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = [stored(row) for row in rows[start : start + CHUNK_ROWS]]
        if dialect.name == "postgresql":
            await driver.copy_records_to_table(table.name, records=chunk, columns=names)
        else:
            await driver.executemany(statement, chunk)


@asynccontextmanager
async def row_triggers_suspended(
    connection: AsyncConnection, table_names: Sequence[str]
) -> AsyncIterator[bool]:
    """On SQLite, drops the tables' triggers for the block and recreates them after it.

    Yields whether they were suspended: the caller then owes ``add_written_counts`` for
    what it wrote. The transaction must already be open by a write (sqlite3 begins one only
    before a DML statement): the drop then rolls back with a failed load, and no other
    writer runs uncounted meanwhile.
    """
    if connection.dialect.name != "sqlite":
        yield False
        return
    raw = await connection.get_raw_connection()
    if not getattr(raw.driver_connection, "in_transaction", False):
        raise RuntimeError("row triggers can be suspended only inside a write transaction")
    master = sa.table(
        "sqlite_master",
        sa.column("type"),
        sa.column("name"),
        sa.column("tbl_name"),
        sa.column("sql"),
    )
    saved = (
        await connection.execute(
            sa.select(master.c.name, master.c.sql).where(
                master.c.type == "trigger", master.c.tbl_name.in_(table_names)
            )
        )
    ).all()
    for name, _ in saved:
        await connection.execute(sa.text(f'DROP TRIGGER "{name}"'))
    yield True
    for _, definition in saved:
        await connection.execute(sa.text(definition))


async def add_written_counts(
    connection: AsyncConnection, counts: Mapping[tuple[str, str], int]
) -> None:
    """Adds rows written, by (table, period), to row_change_counts (what the triggers do)."""
    counters = tables.row_change_counts
    for (table_name, period), written in sorted(counts.items()):
        updated = await connection.execute(
            sa.update(counters)
            .where(counters.c.table_name == table_name, counters.c.period == period)
            .values(changes=counters.c.changes + written)
        )
        if not updated.rowcount:
            await connection.execute(
                sa.insert(counters).values(table_name=table_name, period=period, changes=written)
            )


async def mark_all_written(connection: AsyncConnection, table_names: Sequence[str]) -> None:
    """Bumps every counter of the tables: every period that held rows counts as changed."""
    counters = tables.row_change_counts
    await connection.execute(
        sa.update(counters)
        .where(counters.c.table_name.in_(table_names))
        .values(changes=counters.c.changes + 1)
    )
