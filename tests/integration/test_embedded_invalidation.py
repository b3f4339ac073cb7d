"""Without Redis, a running server sees what the command line changed within the poll interval
(DATAINTEL_CACHE_TAG_POLL_SECONDS) instead of serving its cache until the TTL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from dataintel.app import create_app
from dataintel.store import tables
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.cli import clean_environment, run_dataintel
from tests.plugins.faults import runtime_of

POLL_SECONDS = 0.2
DEADLINE_SECONDS = 5.0
FEATURES = """{ onlineFeatures(entityType: "customer", entityIds: ["1"],
  features: ["lifetime_value"]) { features { name floatValue timestamp } } }"""


async def feature(client: httpx.AsyncClient) -> dict[str, Any]:
    body = (await client.post("/graphql", json={"query": FEATURES})).json()
    assert "errors" not in body, body
    value: dict[str, Any] = body["data"]["onlineFeatures"][0]["features"][0]
    return value


async def until_changed(client: httpx.AsyncClient, before: dict[str, Any]) -> float:
    """Seconds until the server answers something other than ``before``; fails at the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE_SECONDS:
        if await feature(client) != before:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {before} after {DEADLINE_SECONDS} s")


async def test_a_materialization_reaches_a_running_server(
    make_settings: SettingsFactory, seeded_sqlite_url: str, fresh_directory: Path
) -> None:
    app = create_app(make_settings(cache_tag_poll_seconds=POLL_SECONDS))
    async with serving(app) as client:
        await runtime_of(app).services.features.materialize()
        before = await feature(client)
        assert await feature(client) == before
        environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
        result = await asyncio.to_thread(
            run_dataintel,
            ["features", "materialize", "--as-of", "2025-06-01"],
            fresh_directory,
            environment,
        )
        assert result.returncode == 0, result.stderr
        await until_changed(client, before)
        assert (await feature(client))["timestamp"].startswith("2025-06-01")


async def test_cache_invalidate_reaches_a_running_server(
    make_settings: SettingsFactory, seeded_sqlite_url: str, fresh_directory: Path
) -> None:
    app = create_app(make_settings(cache_tag_poll_seconds=POLL_SECONDS))
    async with serving(app) as client:
        await runtime_of(app).services.features.materialize()
        before = await feature(client)
        values = tables.feature_values
        async with runtime_of(app).engine.begin() as connection:
            await connection.execute(
                sa.update(values)
                .where(values.c.entity_id == "1", values.c.feature_name == "lifetime_value")
                .values(value_double=12345.0)
            )
        # Written behind the gateway's back: the cache still answers the old value.
        assert await feature(client) == before
        environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
        result = await asyncio.to_thread(
            run_dataintel, ["cache", "invalidate", "customer:1"], fresh_directory, environment
        )
        assert result.returncode == 0, result.stderr
        await until_changed(client, before)
        assert (await feature(client))["floatValue"] == 12345.0
