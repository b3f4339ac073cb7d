"""Prepared reads: the rows of SQLAlchemy's execution on both stores; on SQLite, read on the
event loop's thread while small, handed to the connection's thread past the budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel import loop_turns
from dataintel.settings import Settings
from dataintel.store import sqlite_driver, tables
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from dataintel.store.prepared import PreparedRead, fetch_prepared
from dataintel.store.sqlite_driver import INLINE_READS
from tests.plugins.store import sqlite_url

CUSTOMERS = tables.customers

BY_IDS = PreparedRead(
    sa.select(CUSTOMERS.c.id, CUSTOMERS.c.tier, CUSTOMERS.c.signed_up_at)
    .where(CUSTOMERS.c.id.in_(sa.bindparam("ids", expanding=True)))
    .where(CUSTOMERS.c.signed_up_at >= sa.bindparam("since", type_=CUSTOMERS.c.signed_up_at.type))
    .order_by(CUSTOMERS.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer()))
)


def customer(number: int) -> dict[str, object]:
    return {
        "id": number,
        "code": f"C{number:06d}",
        "email": f"c{number}@example.com",
        "name": f"Customer {number}",
        "region": "europe",
        "country": "FR",
        "tier": ("gold", "silver")[number % 2],
        "acquisition_channel": "organic",
        "signed_up_at": datetime(2025, 1, number, 8, 30, tzinfo=UTC),
    }


async def insert_customers(engine: AsyncEngine, count: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(CUSTOMERS), [customer(number) for number in range(1, count + 1)]
        )


@pytest.mark.parametrize("ids", [[], [3], [1, 3, 5, 7, 99], list(range(1, 29))])
async def test_rows_are_those_of_sqlalchemys_execution(
    store_engine: AsyncEngine, ids: list[int]
) -> None:
    await insert_customers(store_engine, 28)
    parameters = {"ids": ids, "since": datetime(2025, 1, 3, tzinfo=UTC), "limit": 20}
    async with store_engine.connect() as connection:
        expected = (await connection.execute(BY_IDS.statement, parameters)).all()
    rows = await fetch_prepared(store_engine, BY_IDS, parameters)
    assert [tuple(row) for row in rows] == [tuple(row) for row in expected]
    # Moments come back aware, in UTC, on both stores.
    assert all(row[2].tzinfo is UTC for row in rows)


async def test_a_small_read_makes_no_hand_off_to_the_connections_thread(
    sqlite_engine: AsyncEngine, thread_calls: list[str]
) -> None:
    await insert_customers(sqlite_engine, 5)
    parameters = {"ids": [1, 2], "since": datetime(2025, 1, 1, tzinfo=UTC), "limit": 10}
    await fetch_prepared(sqlite_engine, BY_IDS, parameters)  # the pool's connection, opened
    thread_calls.clear()
    rows = await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    assert [row[0] for row in rows] == [1, 2]
    assert thread_calls == []


async def test_a_read_past_the_budget_is_handed_to_the_connections_thread(
    sqlite_engine: AsyncEngine, thread_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await insert_customers(sqlite_engine, 28)
    parameters = {"ids": list(range(1, 29)), "since": datetime(2025, 1, 1, tzinfo=UTC)}
    await fetch_prepared(sqlite_engine, BY_IDS, {**parameters, "limit": 1})
    thread_calls.clear()
    monkeypatch.setattr(sqlite_driver, "INLINE_STEPS", 10)
    rows = await fetch_prepared(sqlite_engine, BY_IDS, {**parameters, "limit": 28})
    assert [row[0] for row in rows] == list(range(1, 29))
    assert thread_calls == ["_read_on_thread"]


async def test_a_small_read_run_again_and_again_stays_on_the_loops_thread(
    sqlite_engine: AsyncEngine, thread_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite counts a statement's steps over every run of sqlite3's cached statement: a
    # budget that is not counted per read stops one run in so many of a small read.
    await insert_customers(sqlite_engine, 5)
    parameters = {"ids": [1, 2], "since": datetime(2025, 1, 1, tzinfo=UTC), "limit": 10}
    await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    thread_calls.clear()
    monkeypatch.setattr(sqlite_driver, "INLINE_STEPS", 1_000)
    for _ in range(200):
        rows = await fetch_prepared(sqlite_engine, BY_IDS, parameters)
        assert [row[0] for row in rows] == [1, 2]
    assert thread_calls == []


async def test_reads_on_the_loops_thread_give_the_loop_a_turn_once_their_slice_is_over(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop polls its sockets (and accepts connections) only between turns: reads that
    # never leave its thread must not keep it for one turn after another.
    await insert_customers(sqlite_engine, 3)
    parameters = {"ids": [1, 2], "since": datetime(2025, 1, 1, tzinfo=UTC), "limit": 10}
    await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    loop = asyncio.get_running_loop()
    # Restored after the test: its hour-long slice is not left to the tests after it.
    monkeypatch.setattr(loop_turns._Slice, "ends", 0.0)

    async def turns_taken() -> int:
        turns: list[int] = []
        loop.call_soon(turns.append, 1)
        await fetch_prepared(sqlite_engine, BY_IDS, parameters)
        return len(turns)

    monkeypatch.setattr(loop_turns, "SLICE_SECONDS", 0.0)
    assert [await turns_taken() for _ in range(3)] == [1, 1, 1]
    monkeypatch.setattr(loop_turns, "SLICE_SECONDS", 3600.0)
    # The first read opens a slice; the reads after it share it, without a turn.
    assert [await turns_taken() for _ in range(3)] == [1, 0, 0]


async def test_a_connection_not_in_wal_mode_reads_on_its_thread(
    sqlite_engine: AsyncEngine, thread_calls: list[str]
) -> None:
    await insert_customers(sqlite_engine, 3)
    pooled = await sqlite_engine.raw_connection()
    assert pooled.info[INLINE_READS] is True  # the engine asks for WAL mode
    pooled.info[INLINE_READS] = False
    pooled.close()
    thread_calls.clear()
    parameters = {"ids": [1, 2, 3], "since": datetime(2025, 1, 1, tzinfo=UTC), "limit": 10}
    rows = await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    assert [row[0] for row in rows] == [1, 2, 3]
    assert thread_calls == ["_read_on_thread"]


async def test_errors_are_sqlalchemys(sqlite_engine: AsyncEngine) -> None:
    ghost = sa.table("no_such_table", sa.column("id", sa.Integer()))
    read = PreparedRead(sa.select(ghost.c.id).where(ghost.c.id == sa.bindparam("id")))
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        await fetch_prepared(sqlite_engine, read, {"id": 1})


async def test_statement_listeners_see_every_prepared_read(sqlite_engine: AsyncEngine) -> None:
    # Tracing makes a span per statement from SQLAlchemy's cursor events.
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    await insert_customers(sqlite_engine, 3)
    sa.event.listen(sqlite_engine.sync_engine, "before_cursor_execute", record)
    try:
        parameters = {"ids": [1, 2], "since": datetime(2025, 1, 1, tzinfo=UTC), "limit": 10}
        rows = await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    finally:
        sa.event.remove(sqlite_engine.sync_engine, "before_cursor_execute", record)
    assert [row[0] for row in rows] == [1, 2]
    assert len(seen) == 1
    assert seen[0].startswith("SELECT customers.id")


async def test_a_read_cancelled_on_the_thread_does_not_hand_its_connection_on(
    sqlite_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await insert_customers(sqlite_engine, 3)
    parameters = {"ids": [1, 2, 3], "since": datetime(2025, 1, 1, tzinfo=UTC), "limit": 10}
    await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    pooled = await sqlite_engine.raw_connection()
    first = pooled.dbapi_connection
    pooled.close()
    monkeypatch.setattr(sqlite_driver, "INLINE_STEPS", 1)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    monkeypatch.undo()
    rows = await fetch_prepared(sqlite_engine, BY_IDS, parameters)
    assert [row[0] for row in rows] == [1, 2, 3]
    pooled = await sqlite_engine.raw_connection()
    assert pooled.dbapi_connection is not first
    pooled.close()


async def test_a_statement_keeps_few_dialects(tmp_path: Path) -> None:
    read = PreparedRead(sa.select(CUSTOMERS.c.id).where(CUSTOMERS.c.id == sa.bindparam("id")))
    for number in range(12):
        engine = create_engine(Settings(database_url=sqlite_url(tmp_path / f"{number}.db")).store)
        try:
            await upgrade(engine)
            assert await fetch_prepared(engine, read, {"id": 1}) == []
        finally:
            await engine.dispose()
    assert len(read._compiled) <= PreparedRead._DIALECTS_KEPT
