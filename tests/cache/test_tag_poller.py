"""The poller drops what the store's tag versions invalidated, and survives a store that fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.cache import MemoryCache, TwoLevelCache
from dataintel.cache.store_tags import bump_tags
from dataintel.cache.tag_poller import TagPoller
from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from tests.plugins.store import sqlite_url


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    created = create_engine(Settings(database_url=sqlite_url(tmp_path / "store.db")).store)
    yield created
    await created.dispose()


CLOSE_GUARD_SECONDS = 60
"""Far below the interval, far above any close: only a bug reaches it, not a slow machine."""


def cache() -> TwoLevelCache:
    return TwoLevelCache(MemoryCache(100, 1_000_000), None)


async def test_bumps_after_the_first_poll_invalidate(engine: AsyncEngine) -> None:
    local = cache()
    poller = TagPoller(engine, local, 60)
    with pytest.raises(sa.exc.DBAPIError):
        await poller.poll()  # no tables yet: the loop logs this and polls again
    await upgrade(engine)
    await bump_tags(engine, ["customer:1"])
    # Bumps from before the first poll predate this process's cache.
    assert await poller.poll() == []
    generation = local.generation
    await bump_tags(engine, ["customer:2", "features:customer"])
    assert sorted(await poller.poll()) == ["customer:2", "features:customer"]
    assert local.generation == generation + 1
    assert await poller.poll() == []


async def test_closing_does_not_wait_for_the_interval(engine: AsyncEngine) -> None:
    await upgrade(engine)
    # An hour between polls: closing returns on its event, long before the next poll is due;
    # a poller that waited out the interval would fail the guard below instead of hanging.
    poller = TagPoller(engine, cache(), 3600)
    polled = asyncio.Event()
    first_poll = poller.poll

    async def poll() -> list[str]:
        try:
            return await first_poll()
        finally:
            polled.set()

    poller.poll = poll  # type: ignore[method-assign]
    poller.start()
    await polled.wait()
    await asyncio.wait_for(poller.aclose(), CLOSE_GUARD_SECONDS)
