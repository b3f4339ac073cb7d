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

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.store import tables
from dataintel.store.types import UTCDateTime

CHUNK_ROWS = 50_000
"""Rows per driver call: large enough that the per-call cost vanishes, small enough to stream."""
_DAY = 86_400


async def insert_rows(
    connection: AsyncConnection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    moments_since: datetime,
) -> None:
    """Inserts rows (tuples of ``columns``' values) in the connection's transaction.

    A ``UTCDateTime`` column's values are whole seconds since ``moments_since``. ``rows`` may
    be a generator: it is read a chunk at a time, and never held whole.
    """
    dialect = connection.dialect
    binders = [
        _moment_binder(table.c[name].type, dialect, moments_since)
        if isinstance(table.c[name].type, UTCDateTime)
        else table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in columns
    ]
    converted = [(position, bind) for position, bind in enumerate(binders) if bind is not None]

    def stored(chunk: list[Sequence[Any]]) -> list[Sequence[Any]]:
        if not converted or not chunk:
            return chunk
        # Column by column: one map() per converted column instead of a call per row.
        values: list[Sequence[Any]] = list(zip(*chunk, strict=True))
        for position, bind in converted:
            values[position] = list(map(bind, values[position]))
        return list(zip(*values, strict=True))

    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if dialect.name == "postgresql" and not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction with the first statement it
        # runs; a COPY straight to the driver before that would commit on its own.
        await connection.exec_driver_sql("SELECT 1")
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)})"
        f" VALUES ({', '.join('?' for _ in columns)})"
    )

    async def write(chunk: list[Sequence[Any]]) -> None:
        if dialect.name == "postgresql":
            await driver.copy_records_to_table(table.name, records=chunk, columns=list(columns))
        else:
            await driver.executemany(statement, chunk)

    # aiosqlite writes a chunk in a thread of its own (sqlite3 lets go of the GIL while
    # SQLite works) while this one draws and converts the next; asyncpg's COPY goes on only
    # while this thread waits.
    rows_left = iter(rows)
    writing: asyncio.Task[None] | None = None
    try:
        while chunk := stored(list(islice(rows_left, CHUNK_ROWS))):
            if writing is not None:
                await writing
            writing = asyncio.create_task(write(chunk))
            # Lets the task hand the chunk to the driver before this thread draws again.
            await asyncio.sleep(0)
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            # A failed draw: the transaction rolls back, but not under a running write.
            await asyncio.wait([writing])


@functools.cache
def _times_of_day() -> list[str]:
    """Every second of a day as text, "00:00:00" to "23:59:59"."""
    return [
        f"{hour:02d}:{minute:02d}:{second:02d}"
        for hour in range(24)
        for minute in range(60)
        for second in range(60)
    ]


def _moment_binder(
    column_type: sa.types.TypeEngine[Any], dialect: sa.Dialect, since: datetime
) -> Callable[[int], Any]:
    """Seconds since ``since`` to the value ``column_type`` binds for that moment."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)

    def bound(seconds: int) -> Any:
        moment = since + timedelta(seconds=seconds)
        return moment if process is None else process(moment)

    if dialect.name != "sqlite":
        return bound
    # SQLite keeps a moment as text; formatting one datetime per row was a large part of a
    # seed. The texts of a day's midnight and of its last second, as the column binds them,
    # show where the time of day goes in that day's text: any other second of the day is
    # the same text with its own time of day there. A day whose texts do not show it (some
    # other format) is bound a moment at a time.
    clock = _times_of_day()
    days: dict[int, tuple[str, str] | None] = {}

    def day_parts(day: int) -> tuple[str, str] | None:
        midnight, last = bound(day * _DAY), bound(day * _DAY + _DAY - 1)
        at = midnight.find("00:00:00") if isinstance(midnight, str) else -1
        if at < 0 or last != f"{midnight[:at]}23:59:59{midnight[at + 8 :]}":
            return None
        return midnight[:at], midnight[at + 8 :]

    def text(seconds: int) -> Any:
        day, second = divmod(seconds, _DAY)
        try:
            parts = days[day]
        except KeyError:
            parts = days[day] = day_parts(day)
        if parts is None:
            return bound(seconds)
        return parts[0] + clock[second] + parts[1]

    return text


_SQLITE_MASTER = sa.table(
    "sqlite_master",
    sa.column("type"),
    sa.column("name"),
    sa.column("tbl_name"),
    sa.column("sql"),
)


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
    master = _SQLITE_MASTER
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


@asynccontextmanager
async def indexes_suspended(
    connection: AsyncConnection, table_names: Sequence[str]
) -> AsyncIterator[None]:
    """On SQLite, drops the tables' own indexes for the block and builds them again after it.

    Building an index over loaded rows sorts them once; keeping it while millions of rows
    go in puts each row into every index's B-tree, pages all over them: at ``--scale 100``
    most of a load. The indexes of UNIQUE and PRIMARY KEY constraints stay (they are part
    of their tables). As with the triggers, the transaction must already be open by a
    write: a failed load rolls the drop back.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = await connection.get_raw_connection()
    if not getattr(raw.driver_connection, "in_transaction", False):
        raise RuntimeError("indexes can be suspended only inside a write transaction")
    master = _SQLITE_MASTER
    saved = (
        await connection.execute(
            sa.select(master.c.name, master.c.sql).where(
                master.c.type == "index",
                master.c.tbl_name.in_(table_names),
                # A constraint's index has no statement of its own and cannot be dropped.
                master.c.sql.is_not(None),
            )
        )
    ).all()
    for name, _ in saved:
        await connection.execute(sa.text(f'DROP INDEX "{name}"'))
    yield
    for _, definition in saved:
        await connection.execute(sa.text(definition))


@asynccontextmanager
async def page_cache_enlarged(connection: AsyncConnection, mebibytes: int) -> AsyncIterator[None]:
    """On SQLite, lets the connection cache up to ``mebibytes`` of pages for the block.

    A large load then rewrites fewer pages it has already spilled, and building an index
    sorts more of it in memory. The connection goes back to the pool with the cache it had,
    whatever the block does.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    before = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    # A negative size is in KiB rather than in pages.
    await connection.exec_driver_sql(f"PRAGMA cache_size = {-1024 * mebibytes}")
    try:
        yield
    finally:
        await connection.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")


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
