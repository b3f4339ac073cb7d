"""The analytics query from rollups versus raw rows on a larger store, and build costs.

Seeds its own SQLite store at ``scale`` (the demo data times scale), builds the rollups
(timed: the full build), rebuilds one partition (timed: what a late row costs), then sends
the dashboard's analytics query through the app with caches off, rollups on and off.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.harness import Measurement, measure, running
from bench.reconciliation_scenarios import ReconciliationTiming, time_reconciliation
from dataintel.services.analytics import load_catalog, refresh_rollups
from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from dataintel.store.seed import seed

# The dashboard's analytics query, without its distinct count (active_customers is never
# answered from a rollup, so the dashboard's own query reads raw rows either way).
ROUTABLE = """
query Dashboard {
  analytics(query: {
    measures: ["revenue", "order_count", "average_order_value"]
    dimensions: ["region"]
    time: {granularity: WEEK, from: "2026-01-01", to: "2026-07-01"}
  }) {
    source
    rows { time dimensions { value } measures { name value } }
    totals { name value }
  }
}
"""


async def rollup_scenarios(
    directory: Path, scale: int, requests: int, concurrency: int
) -> tuple[list[Measurement], list[tuple[str, float]], ReconciliationTiming]:
    """Query throughput rollup versus raw, (label, seconds) of the builds, and the built-in
    reconciliation on the same store."""
    url = f"sqlite+aiosqlite:///{directory / f'bench-scale-{scale}.db'}"
    engine = create_engine(Settings(database_url=url).store)
    timings: list[tuple[str, float]] = []
    try:
        await upgrade(engine)
        started = time.perf_counter()
        await seed(engine, scale)
        timings.append((f"seed at scale {scale}", time.perf_counter() - started))
        reconciled = await time_reconciliation(url, scale)
        catalog = load_catalog()
        started = time.perf_counter()
        summaries = await refresh_rollups(engine, catalog, full=True)
        rows = sum(summary.rows for summary in summaries)
        timings.append((f"full build, every rollup ({rows} rows)", time.perf_counter() - started))
        partition = summaries[0].rebuilt[-2]
        started = time.perf_counter()
        await refresh_rollups(engine, catalog, partitions=[partition])
        timings.append(
            (f"one partition ({partition}) of every rollup", time.perf_counter() - started)
        )
        started = time.perf_counter()
        await refresh_rollups(engine, catalog)
        timings.append(("refresh with nothing changed", time.perf_counter() - started))
    finally:
        await engine.dispose()
    body = {"query": ROUTABLE}
    results = []
    for scenario, rollups in ((f"raw, scale {scale}", False), (f"rollup, scale {scale}", True)):
        settings = Settings(
            database_url=url,
            log_level="warning",
            cache_enabled=False,
            response_cache_enabled=False,
            analytics_rollups=rollups,
            # Raw rows at scale take seconds per query on a busy machine: measure, not trip.
            store_call_timeout_seconds=120,
            database_timeout_seconds=120,
        )
        async with running(settings) as (app, client):
            results.append(
                await measure(
                    scenario, app, client, body, requests=requests, concurrency=concurrency
                )
            )
    return results, timings, reconciled
