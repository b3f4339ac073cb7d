"""insert_rows: stores exactly what SQLAlchemy's insert() stores, moments given as seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.bulk_load import CHUNK_ROWS, indexes_suspended, insert_rows
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from tests.plugins.store import sqlite_url

LEDGER = tables.ledger_entries
COLUMNS = ("id", "entry_ref", "order_id", "amount_cents", "currency", "booked_at", "status")
DAY = 86_400

SINCE = {
    "midnight UTC": datetime(2025, 1, 1, tzinfo=UTC),
    # Not a midnight, and not UTC either: the text of a day does not start at it.
    "afternoon in Tokyo": datetime(
        2025, 3, 30, 13, 7, 5, 250_000, tzinfo=timezone(timedelta(hours=9))
    ),
}
SECONDS = (0, 1, 59, 3599, DAY - 1, DAY, 45 * DAY + 12_345, 300 * DAY + 86_399, -1, -DAY - 61)
"""Day edges, both sides of midnight, and moments before ``since`` itself."""


def rows(first_id: int) -> Iterator[tuple[int, str, None, int, str, int, str]]:
    for offset, seconds in enumerate(SECONDS):
        yield (first_id + offset, f"LE-{first_id + offset}", None, 100, "USD", seconds, "booked")


async def stored(engine: AsyncEngine, first_id: int) -> list[tuple[object, ...]]:
    # What the driver hands back, unprocessed: SQLite's text, PostgreSQL's timestamptz.
    async with engine.connect() as connection:
        found = await connection.exec_driver_sql(
            "SELECT booked_at FROM ledger_entries WHERE id >= ? AND id < ? ORDER BY id"
            if engine.dialect.name == "sqlite"
            else "SELECT booked_at FROM ledger_entries WHERE id >= $1 AND id < $2 ORDER BY id",
            (first_id, first_id + len(SECONDS)),
        )
        return [tuple(row) for row in found]


@pytest.mark.parametrize("since", SINCE.values(), ids=SINCE.keys())
async def test_moments_are_stored_as_insert_stores_them(
    store_engine: AsyncEngine, since: datetime
) -> None:
    async with store_engine.begin() as connection:
        await insert_rows(connection, LEDGER, COLUMNS, rows(1), moments_since=since)
        await connection.execute(
            sa.insert(LEDGER),
            [
                dict(zip(COLUMNS, row, strict=True))
                | {"booked_at": since + timedelta(seconds=row[5])}
                for row in rows(101)
            ],
        )
    assert await stored(store_engine, 1) == await stored(store_engine, 101)


async def test_a_generator_is_written_a_chunk_at_a_time(store_engine: AsyncEngine) -> None:
    count = 2 * CHUNK_ROWS + 7
    since = SINCE["midnight UTC"]
    lines = ((n, f"LE-{n}", n, n, "USD", n, "booked") for n in range(1, count + 1))
    async with store_engine.begin() as connection:
        await insert_rows(connection, LEDGER, COLUMNS, lines, moments_since=since)
    async with store_engine.connect() as connection:
        written, last_booked = (
            await connection.execute(sa.select(sa.func.count(), sa.func.max(LEDGER.c.booked_at)))
        ).one()
    assert (written, last_booked) == (count, since + timedelta(seconds=count))


async def test_a_failed_load_writes_nothing(store_engine: AsyncEngine) -> None:
    def failing() -> Iterator[tuple[object, ...]]:
        for n in range(1, CHUNK_ROWS + 2):
            yield (n, f"LE-{n}", None, n, "USD", n, "booked")
        raise RuntimeError("drawing failed")

    with pytest.raises(RuntimeError, match="drawing failed"):
        async with store_engine.begin() as connection:
            await insert_rows(
                connection, LEDGER, COLUMNS, failing(), moments_since=SINCE["midnight UTC"]
            )
    async with store_engine.connect() as connection:
        assert (
            await connection.execute(sa.select(sa.func.count()).select_from(LEDGER))
        ).scalar_one() == 0


async def index_definitions(connection: AsyncConnection) -> list[tuple[str, str]]:
    found = await connection.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " ORDER BY name"
        )
    )
    return [(name, sql) for name, sql in found]


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=sqlite_url(tmp_path / "store.db")).store)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


async def test_indexes_are_built_again_after_the_load(sqlite_engine: AsyncEngine) -> None:
    since = SINCE["midnight UTC"]
    async with sqlite_engine.connect() as connection:
        before = await index_definitions(connection)
    async with sqlite_engine.begin() as connection:
        await connection.execute(sa.delete(LEDGER))
        async with indexes_suspended(connection, [LEDGER.name]):
            during = await index_definitions(connection)
            await insert_rows(connection, LEDGER, COLUMNS, rows(1), moments_since=since)
    async with sqlite_engine.connect() as connection:
        after = await index_definitions(connection)
    assert [name for name, _ in before if "ledger_entries" in name]
    assert not [name for name, _ in during if "ledger_entries" in name]
    assert after == before
    async with sqlite_engine.connect() as connection:
        # The rebuilt index holds the rows loaded while it was away.
        plan = await connection.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM ledger_entries WHERE order_id IS NULL"
        )
        assert "INDEX" in " ".join(str(step[-1]) for step in plan)
        nulls = await connection.exec_driver_sql(
            "SELECT count(*) FROM ledger_entries WHERE order_id IS NULL"
        )
        assert nulls.scalar_one() == len(SECONDS)


async def test_indexes_are_suspended_only_inside_a_write(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.connect() as connection:
        with pytest.raises(RuntimeError, match="inside a write transaction"):
            async with indexes_suspended(connection, [LEDGER.name]):
                pass
