"""SQLite through aiosqlite: one call on the connection's thread per statement, none for an
idle rollback, and transactions, errors and streaming as SQLAlchemy's own adapter has them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.store import tables


def customer(customer_id: int) -> dict[str, object]:
    return {
        "id": customer_id,
        "code": f"C{customer_id:06d}",
        "email": f"c{customer_id}@example.com",
        "name": f"Customer {customer_id}",
        "region": "europe",
        "country": "FR",
        "tier": "gold",
        "acquisition_channel": "organic",
        "signed_up_at": datetime(2025, 1, customer_id, 8, 30, tzinfo=UTC),
    }


@pytest.fixture
def engine(sqlite_engine: AsyncEngine) -> AsyncEngine:
    return sqlite_engine


async def test_a_read_is_one_call_on_the_connections_thread(
    engine: AsyncEngine, thread_calls: list[str]
) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.insert(tables.customers), [customer(1), customer(2)])
    async with engine.connect() as connection:  # the pool's connection, opened
        await connection.execute(sa.select(1))
    thread_calls.clear()
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(tables.customers.c.id))).all()
    # SQLAlchemy's adapter made five: cursor, execute, fetchall, close, rollback.
    assert [row.id for row in rows] == [1, 2]
    assert len(thread_calls) == 1


async def test_writes_commit_and_roll_back_as_before(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.insert(tables.customers), [customer(1)])
    failing = engine.begin()
    connection = await failing.__aenter__()
    await connection.execute(sa.insert(tables.customers), [customer(2)])
    # The block fails: its write is rolled back.
    await failing.__aexit__(RuntimeError, RuntimeError("failed"), None)
    async with engine.connect() as connection:
        await connection.execute(sa.insert(tables.customers), [customer(3)])
        # Closed without commit: rolled back, though nothing else was read or written.
    async with engine.connect() as connection:
        ids = (await connection.execute(sa.select(tables.customers.c.id))).scalars().all()
    assert ids == [1]


async def test_counts_returning_rows_and_many_parameter_sets(engine: AsyncEngine) -> None:
    customers = tables.customers
    async with engine.begin() as connection:
        inserted = await connection.execute(
            sa.insert(customers), [customer(day) for day in (1, 2, 3)]
        )
        assert inserted.rowcount == 3
        updated = await connection.execute(
            sa.update(customers).where(customers.c.id >= 2).values(tier="silver")
        )
        assert updated.rowcount == 2
        returned = await connection.execute(
            sa.delete(customers).where(customers.c.id == 3).returning(customers.c.code)
        )
        assert returned.scalars().all() == ["C000003"]
        read = await connection.execute(
            sa.select(customers.c.id, customers.c.tier, customers.c.signed_up_at).order_by(
                customers.c.id
            )
        )
        assert [tuple(row) for row in read] == [
            (1, "gold", datetime(2025, 1, 1, 8, 30, tzinfo=UTC)),
            (2, "silver", datetime(2025, 1, 2, 8, 30, tzinfo=UTC)),
        ]


async def test_errors_are_sqlalchemys_and_leave_the_connection_usable(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        await connection.execute(sa.insert(tables.customers), [customer(1)])
        with pytest.raises(sa.exc.IntegrityError):
            await connection.execute(sa.insert(tables.customers), [customer(1)])
        with pytest.raises(sa.exc.OperationalError, match="no such table"):
            await connection.exec_driver_sql("SELECT * FROM no_such_table")
        assert (
            await connection.execute(sa.select(sa.func.count()).select_from(tables.customers))
        ).scalar_one() == 1


async def test_streaming_keeps_paging_through_a_server_side_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            sa.insert(tables.customers), [customer(day) for day in range(1, 8)]
        )
    async with engine.connect() as connection:
        result = await connection.stream(
            sa.select(tables.customers.c.id)
            .order_by(tables.customers.c.id)
            .execution_options(yield_per=3)
        )
        chunks = [[row.id for row in chunk] async for chunk in result.partitions()]
    assert chunks == [[1, 2, 3], [4, 5, 6], [7]]
