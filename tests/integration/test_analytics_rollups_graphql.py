"""Rollups through the real app: the result says where it came from, the values do not move."""

from __future__ import annotations

from typing import Any

import httpx

from dataintel.app import create_app
from dataintel.services.analytics import load_catalog, refresh_rollups
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.statements import counting_statements

QUERY = """
query Weekly($query: AnalyticsQueryInput!) {
  analytics(query: $query) {
    source rollups rollupBuiltAt
    rows { time dimensions { value } measures { name value } }
    totals { name value }
  }
}
"""
WEEKLY = {
    "measures": ["revenue", "order_count", "average_order_value"],
    "dimensions": ["region"],
    "timezone": "Europe/Berlin",
    "time": {"granularity": "WEEK", "from": "2026-05-01", "to": "2026-07-01"},
}


async def ask(client: httpx.AsyncClient, query: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": QUERY, "variables": {"query": query}})
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["analytics"]
    return result


async def test_a_built_rollup_answers_with_the_same_values(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        cache_enabled=False, response_cache_enabled=False, analytics_rollups=True
    )
    async with serving(create_app(settings)) as client:
        before = await ask(client, WEEKLY)
    assert before["source"] == "RAW"
    assert before["rollups"] == []
    assert before["rollupBuiltAt"] is None

    engine = create_engine(settings.store)
    try:
        await refresh_rollups(engine, load_catalog())
    finally:
        await engine.dispose()

    app = create_app(settings)
    async with serving(app) as client:
        rolled = await ask(client, WEEKLY)
        distinct = await ask(client, {**WEEKLY, "measures": ["revenue", "active_customers"]})
        with counting_statements(app.state.runtime.engine) as log:
            await ask(client, WEEKLY)
    # The rollups' state, the store's write counters, then the rows and the totals: the
    # freshness check reads a few counter rows, never the source's own rows.
    assert len(log) == 4
    state, counters = log.statements[:2]
    assert "analytics_rollup_state" in state
    assert "row_change_counts" in counters
    assert not any(f"FROM {table}" in counters for table in ("orders", "customers"))
    assert rolled["source"] == "ROLLUP"
    assert rolled["rollups"] == ["orders_by_region_hourly"]
    assert rolled["rollupBuiltAt"] is not None
    assert (rolled["rows"], rolled["totals"]) == (before["rows"], before["totals"])
    assert distinct["source"] == "RAW", "no rollup holds active_customers"

    off = make_settings(
        database_url=settings.store.database_url,
        cache_enabled=False,
        response_cache_enabled=False,
        analytics_rollups=False,
    )
    async with serving(create_app(off)) as client:
        assert (await ask(client, WEEKLY))["source"] == "RAW"
