"""UTCDateTime: aware UTC in, aware UTC out, and correct comparisons in SQL, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from tests.plugins.store import sqlite_url

PARIS_SUMMER = timezone(timedelta(hours=2))
NEW_YORK_WINTER = timezone(timedelta(hours=-5))


def user(user_id: int, created_at: datetime) -> dict[str, object]:
    return {
        "id": user_id,
        "email": f"user{user_id}@example.com",
        "display_name": f"User {user_id}",
        "is_active": True,
        "created_at": created_at,
    }


async def test_moments_come_back_as_aware_utc(store_engine: AsyncEngine) -> None:
    written = datetime(2025, 6, 1, 14, 30, 15, 123456, tzinfo=PARIS_SUMMER)
    async with store_engine.begin() as connection:
        await connection.execute(sa.insert(tables.users), [user(1, written)])
    async with store_engine.connect() as connection:
        read = (await connection.execute(sa.select(tables.users.c.created_at))).scalar_one()
        latest = (
            await connection.execute(sa.select(sa.func.max(tables.users.c.created_at)))
        ).scalar_one()
    assert read == written
    assert read.tzinfo is UTC
    assert read == datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
    assert latest == written
    assert latest.tzinfo is UTC


async def test_comparisons_in_sql_follow_time_not_wall_clock(store_engine: AsyncEngine) -> None:
    # 09:00 in New York is 14:00 UTC: later than 12:00 UTC although its wall clock is earlier.
    async with store_engine.begin() as connection:
        await connection.execute(
            sa.insert(tables.users),
            [
                user(1, datetime(2025, 1, 10, 12, 0, tzinfo=UTC)),
                user(2, datetime(2025, 1, 10, 9, 0, tzinfo=NEW_YORK_WINTER)),
            ],
        )
    boundary = datetime(2025, 1, 10, 14, 30, tzinfo=PARIS_SUMMER)  # 12:30 UTC
    users = tables.users.c
    async with store_engine.connect() as connection:
        later = await connection.execute(sa.select(users.id).where(users.created_at > boundary))
        ordered = await connection.execute(sa.select(users.id).order_by(users.created_at))
        assert later.scalars().all() == [2]
        assert ordered.scalars().all() == [1, 2]


async def test_a_naive_moment_is_refused(store_engine: AsyncEngine) -> None:
    async with store_engine.begin() as connection:
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            await connection.execute(sa.insert(tables.users), [user(1, datetime(2025, 1, 1))])


async def test_null_stays_null(store_engine: AsyncEngine) -> None:
    created = datetime(2025, 1, 1, tzinfo=UTC)
    async with store_engine.begin() as connection:
        await connection.execute(sa.insert(tables.users), [user(1, created)])
        await connection.execute(
            sa.insert(tables.api_keys),
            [
                {
                    "user_id": 1,
                    "name": "ci",
                    "prefix": "dik_abc",
                    "key_hash": "hash",
                    "created_at": created,
                    "expires_at": None,
                }
            ],
        )
        expires = await connection.execute(sa.select(tables.api_keys.c.expires_at))
        assert expires.scalar_one() is None


@pytest.mark.parametrize(
    ("stored", "read"),
    [
        ("2025-06-01 12:30:15.123456", datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)),
        ("2025-06-01 12:30:15", datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)),
        ("2025-06-01T12:30:15", datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)),
        ("2025-06-01 14:30:15+02:00", datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=UTC)),
    ],
)
async def test_sqlite_text_of_any_iso_shape_reads_as_aware_utc(
    tmp_path: Path, stored: str, read: datetime
) -> None:
    # The common shape (UTC wall clock, no zone) is parsed in one step; every other shape
    # must still read as it did through the general way (parse, then set or convert the zone).
    engine = create_engine(Settings(database_url=sqlite_url(tmp_path / "store.db")).store)
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(tables.users), [user(1, datetime(2025, 1, 1, tzinfo=UTC))]
            )
            await connection.exec_driver_sql(
                "UPDATE users SET created_at = ? WHERE id = 1", (stored,)
            )
            found = (await connection.execute(sa.select(tables.users.c.created_at))).scalar_one()
    finally:
        await engine.dispose()
    assert found == read
    assert found.tzinfo is UTC
