"""Analytics queries from rollups versus raw rows on a large store, and the build costs.

Uses a store seeded at ``scale`` (kept between runs: ``bench.seeded_stores``), on SQLite and,
given a server, on PostgreSQL. Per store: a full build of every rollup, a rebuild of one
partition (what a day of new rows in the current month costs), a refresh with nothing
changed; then each query through the app with caches off, rollups off (raw rows) and on,
one request at a time, so p50 and p95 are latencies rather than queueing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from bench.harness import Measurement, measure, running
from bench.reconciliation_scenarios import ReconciliationTiming, time_reconciliation
from bench.seeded_stores import seeded_store_url
from dataintel.services.analytics import load_catalog, refresh_rollups
from dataintel.settings import Settings
from dataintel.store.engine import create_engine

_RESULT = """
    source rollups
    rows { time dimensions { value } measures { name value } }
    totals { name value }
"""
# The dashboard's analytics query, without its distinct count (no rollup holds
# active_customers), and the README's (Berlin months; its conversion_rate is a ratio of
# distinct counts, from the events' key sets), with and without that measure.
QUERIES = {
    "dashboard: revenue, orders, AOV by region, UTC weeks": """
  analytics(query: {
    measures: ["revenue", "order_count", "average_order_value"]
    dimensions: ["region"]
    time: {granularity: WEEK, from: "2026-01-01", to: "2026-07-01"}
  }) {%s}""",
    "README: + conversion_rate, Berlin months": """
  analytics(query: {
    measures: ["revenue", "order_count", "conversion_rate"]
    dimensions: ["region"]
    time: {granularity: MONTH, from: "2025-01-01", to: "2025-07-01"}
    timezone: "Europe/Berlin"
    orderBy: [{member: "time"}, {member: "revenue", direction: DESC}]
  }) {%s}""",
    "README without conversion_rate, Berlin months": """
  analytics(query: {
    measures: ["revenue", "order_count"]
    dimensions: ["region"]
    time: {granularity: MONTH, from: "2025-01-01", to: "2025-07-01"}
    timezone: "Europe/Berlin"
    orderBy: [{member: "time"}, {member: "revenue", direction: DESC}]
  }) {%s}""",
}


@dataclass(frozen=True, slots=True)
class RoutedQuery:
    """One query on one store: raw rows versus rollups, and where the routed answer came from."""

    store: str
    query: str
    source: str
    rollups: tuple[str, ...]
    raw: Measurement
    rolled: Measurement


@dataclass(frozen=True, slots=True)
class StoreRun:
    """What one store measured: its build timings and its queries."""

    store: str
    timings: list[tuple[str, float]]
    queries: list[RoutedQuery]


async def _build_timings(url: str, scale: int, seeded: float) -> list[tuple[str, float]]:
    timings = [(f"seed at scale {scale}" if seeded else "seed (reused store)", seeded)]
    engine = create_engine(Settings(database_url=url, database_timeout_seconds=3600).store)
    try:
        catalog = load_catalog()
        started = time.perf_counter()
        summaries = await refresh_rollups(engine, catalog, full=True)
        rows = sum(summary.rows for summary in summaries)
        timings.append(
            (
                f"full build, {len(summaries)} rollups ({rows:,} rows)",
                time.perf_counter() - started,
            )
        )
        partition = summaries[0].rebuilt[-1]
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
    return timings


async def _queries(store: str, url: str, requests: int, raw_requests: int) -> list[RoutedQuery]:
    found: list[RoutedQuery] = []
    for label, query in QUERIES.items():
        body = {"query": "{" + query % _RESULT + "}"}
        measured: dict[bool, Measurement] = {}
        answer: dict[str, Any] = {}
        for rollups in (False, True):
            settings = Settings(
                database_url=url,
                log_level="warning",
                cache_enabled=False,
                response_cache_enabled=False,
                analytics_rollups=rollups,
                # Raw rows at scale take seconds per query on a busy machine: measure, not trip.
                store_call_timeout_seconds=600,
                database_timeout_seconds=600,
            )
            async with running(settings) as (app, client):
                measured[rollups] = await measure(
                    f"{store}: {label}",
                    app,
                    client,
                    body,
                    requests=requests if rollups else raw_requests,
                    concurrency=1,
                    warmup=2 if rollups else 1,
                )
                if rollups:
                    answer = (await client.post("/graphql", json=body)).json()["data"]["analytics"]
        found.append(
            RoutedQuery(
                store,
                label,
                answer["source"],
                tuple(answer["rollups"]),
                measured[False],
                measured[True],
            )
        )
    return found


async def rollup_scenarios(
    scale: int,
    requests: int,
    raw_requests: int,
    *,
    sqlite: bool = True,
    postgres_server_url: str | None = None,
    reconcile: bool = True,
) -> tuple[list[StoreRun], ReconciliationTiming | None]:
    """Per store (SQLite, and PostgreSQL given a server URL): builds and queries; and the
    built-in reconciliation on the SQLite store when asked."""
    runs: list[StoreRun] = []
    reconciled: ReconciliationTiming | None = None
    stores: list[tuple[str, str | None]] = [("SQLite", None)] if sqlite else []
    if postgres_server_url:
        stores.append(("PostgreSQL", postgres_server_url))
    for store, server in stores:
        url, seeded = await seeded_store_url(scale, server)
        if server is None and reconcile:
            reconciled = await time_reconciliation(url, scale)
        timings = await _build_timings(url, scale, seeded)
        runs.append(StoreRun(store, timings, await _queries(store, url, requests, raw_requests)))
    return runs, reconciled


def rollup_table(runs: list[StoreRun], scale: int) -> str:
    """The Markdown tables: queries raw versus routed, then the builds, per store."""
    load = os.getloadavg()
    lines = [
        f"scale {scale}, {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f}"
        f" / {load[2]:.1f} (1/5/15 min) at the end; one request at a time, caches off:",
        "",
        "| store | query | answered from | raw p50 ms | raw p95 ms | rollup p50 ms"
        " | rollup p95 ms | raw / rollup (p50) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        for routed in run.queries:
            where = f"{routed.source} ({', '.join(routed.rollups) or 'no rollup'})"
            lines.append(
                f"| {run.store} | {routed.query} | {where} | {routed.raw.p50_ms:,.0f}"
                f" | {routed.raw.p95_ms:,.0f} | {routed.rolled.p50_ms:,.1f}"
                f" | {routed.rolled.p95_ms:,.1f}"
                f" | {routed.raw.p50_ms / routed.rolled.p50_ms:,.1f}x |"
            )
    lines += ["", "| store | rollup build | seconds |", "| --- | --- | ---: |"]
    for run in runs:
        lines.extend(f"| {run.store} | {label} | {seconds:.2f} |" for label, seconds in run.timings)
    return "\n".join(lines)
