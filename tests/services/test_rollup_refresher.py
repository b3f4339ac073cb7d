"""The in-process rollup refresh: off by default, and when on, it keeps rollups current."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from dataintel.app import create_app
from dataintel.services.analytics import AnalyticsQuery, SqlAnalyticsService, load_catalog
from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory, serving

QUERY = AnalyticsQuery(
    measures=("revenue", "order_count"),
    dimensions=("region",),
    granularity="month",
    start=datetime(2025, 3, 1),
    end=datetime(2025, 9, 1),
)


def test_refresh_is_off_by_default() -> None:
    assert Settings().analytics.rollup_refresh_seconds == 0


async def source_of(settings: Settings) -> str:
    engine = create_engine(settings.store)
    try:
        service = SqlAnalyticsService(engine, load_catalog(), rollups=True)
        return (await service.query(QUERY)).source
    finally:
        await engine.dispose()


async def test_a_server_with_a_refresh_interval_builds_the_rollups(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(analytics_rollup_refresh_seconds=0.2)
    assert await source_of(settings) == "raw"
    async with serving(create_app(settings)):
        deadline = time.monotonic() + 60
        while await source_of(settings) != "rollup":
            assert time.monotonic() < deadline, "the refresher never built the rollups"
            await asyncio.sleep(0.2)
