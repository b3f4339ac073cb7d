"""Tag versions in the store: every bump gets a serial above the ones before, on both dialects."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.cache.store_tags import bump_tags, bumped_since, latest_serial


async def test_bumps_are_seen_once_in_order(store_engine: AsyncEngine) -> None:
    assert await latest_serial(store_engine) == 0
    await bump_tags(store_engine, ["features:customer", "customer:1"])
    seen, tags = await bumped_since(store_engine, 0)
    assert sorted(tags) == ["customer:1", "features:customer"]
    assert seen == await latest_serial(store_engine)
    assert await bumped_since(store_engine, seen) == (seen, [])
    await bump_tags(store_engine, ["customer:1"])
    later, tags = await bumped_since(store_engine, seen)
    assert tags == ["customer:1"]
    assert later > seen


async def test_concurrent_bumps_never_share_a_serial(store_engine: AsyncEngine) -> None:
    names = [f"customer:{number}" for number in range(8)]
    await asyncio.gather(*(bump_tags(store_engine, [name]) for name in names))
    highest, tags = await bumped_since(store_engine, 0)
    assert sorted(tags) == sorted(names)
    # Eight bumps, eight distinct serials: the highest is the count.
    assert highest == len(names)
