"""Analytics queries from rollups versus raw rows on a large store, and the build costs.

Uses a store seeded at ``scale`` (kept between runs: ``bench.seeded_stores``), on SQLite and,
given a server, on PostgreSQL. Per store: a full build of every rollup, the refresh after new
rows land in one UTC day, then in every day of one month, a refresh with nothing changed (the
rows added are deleted again afterwards, so the store stays as seeded), and the freshness
check a routed query makes; then each query through the app with caches off, rollups off
(raw rows) and on, one request at a time, so p50 and p95 are latencies rather than queueing.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.harness import Measurement, measure, running
from bench.reconciliation_scenarios import ReconciliationTiming, time_reconciliation
from bench.seeded_stores import seeded_store_url
from dataintel.services.analytics import (
    AnalyticsCatalog,
    AnalyticsQuery,
    RefreshSummary,
    load_catalog,
    plan_query,
    refresh_rollups,
)
from dataintel.services.analytics.rollups import (
    current_changes,
    partition_bounds,
    state_statement,
    states_of,
    touched_span,
)
from dataintel.services.analytics.routing import candidates, decide, range_of
from dataintel.settings import Settings
from dataintel.store import tables
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


# Of the rows in a range, those copied as new rows: a few per day at scale 1, more above.
_COPIED_EVERY = 7
# The query whose freshness check is timed (the dashboard's: six UTC months of days).
_CHECKED = AnalyticsQuery(
    measures=("revenue", "order_count", "average_order_value"),
    dimensions=("region",),
    granularity="week",
    start=datetime(2026, 1, 1),
    end=datetime(2026, 7, 1),
)
_CHECKS = 30


async def _add_rows(engine: AsyncEngine, start: datetime, end: datetime) -> int:
    """Copies some orders and events of [start, end) as new rows; the first new id's floor."""
    async with engine.begin() as connection:
        first = int(
            (await connection.execute(sa.select(sa.func.max(tables.orders.c.id)))).scalar_one()
        )
        for table, moment in (
            (tables.orders, tables.orders.c.placed_at),
            (tables.events, tables.events.c.occurred_at),
        ):
            copied = [column for column in table.c if column.name != "id"]
            await connection.execute(
                sa.insert(table).from_select(
                    [column.name for column in copied],
                    sa.select(*copied).where(
                        moment >= start, moment < end, table.c.id % _COPIED_EVERY == 0
                    ),
                )
            )
    return first


async def _remove_rows(engine: AsyncEngine, after_order: int, after_event: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(sa.delete(tables.orders).where(tables.orders.c.id > after_order))
        await connection.execute(sa.delete(tables.events).where(tables.events.c.id > after_event))


def _by_unit(catalog: AnalyticsCatalog) -> dict[str, list[str]]:
    """The rollups by partition unit: UTC days, and the others (months of a zone or UTC)."""
    units: dict[str, list[str]] = {}
    for rollup in catalog.rollups.values():
        utc_days = rollup.partition == "day" and rollup.zone == "UTC"
        units.setdefault("UTC day" if utc_days else "month", []).append(rollup.name)
    return units


async def _timed_refresh(
    engine: AsyncEngine, catalog: AnalyticsCatalog, start: datetime, end: datetime
) -> tuple[float, list[RefreshSummary], dict[str, float]]:
    """Seconds of the build after new rows in [start, end), in all and per partition unit
    (the rollups of each unit built one after the other); the rows are removed after."""
    async with engine.connect() as connection:
        last_event = int(
            (await connection.execute(sa.select(sa.func.max(tables.events.c.id)))).scalar_one()
        )
    last_order = await _add_rows(engine, start, end)
    summaries: list[RefreshSummary] = []
    per_unit: dict[str, float] = {}
    for unit, names in _by_unit(catalog).items():
        started = time.perf_counter()
        summaries += await refresh_rollups(engine, catalog, names)
        per_unit[unit] = time.perf_counter() - started
    await _remove_rows(engine, last_order, last_event)
    await refresh_rollups(engine, catalog)
    return sum(per_unit.values()), summaries, per_unit


async def _freshness_check_ms(
    engine: AsyncEngine, catalog: AnalyticsCatalog
) -> tuple[float, float]:
    """The median milliseconds of a routed query's check (state rows and counters read), wall
    clock and this process's CPU (the CPU time hardly moves with the machine's load)."""
    plan = plan_query(catalog, _CHECKED)
    found = candidates(plan)
    rollups = [candidate.rollup for candidate in found]
    span = range_of(plan)
    assert span is not None
    spent: list[float] = []
    cpu: list[float] = []
    async with engine.connect() as connection:
        for _ in range(_CHECKS):
            started = time.perf_counter()
            started_cpu = time.process_time()
            # As the service checks.
            statement = state_statement(rollups, span)
            recorded = states_of((await connection.execute(statement)).all())
            current = await current_changes(
                connection, catalog, rollups, touched_span(rollups, span)
            )
            decision = decide(found, span, current, recorded)
            spent.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert decision.rollups, "the checked query is routed"
    return statistics.median(spent), statistics.median(cpu)


def _rebuilt(summaries: list[RefreshSummary]) -> str:
    counts = sorted({len(summary.rebuilt) + len(summary.removed) for summary in summaries})
    return "/".join(str(count) for count in counts)


async def _build_timings(url: str, scale: int, seeded: float) -> list[tuple[str, float]]:
    timings = [(f"seed at scale {scale}" if seeded else "seed (reused store)", seeded)]
    engine = create_engine(Settings(database_url=url, database_timeout_seconds=3600).store)
    try:
        catalog = load_catalog()
        units = _by_unit(catalog)
        summaries = []
        built: dict[str, float] = {}
        for unit, names in units.items():
            started = time.perf_counter()
            summaries += await refresh_rollups(engine, catalog, names, full=True)
            built[unit] = time.perf_counter() - started
        rows = sum(summary.rows for summary in summaries)
        timings.append(
            (f"full build, {len(summaries)} rollups ({rows:,} rows)", sum(built.values()))
        )
        timings += [
            (f"of which the {len(units[unit])} rollups by {unit}", spent)
            for unit, spent in built.items()
        ]
        # The last month that holds orders, and a day in its middle.
        month_start = partition_bounds(summaries[0].rebuilt[-1][:7])[0]
        month_end = partition_bounds(summaries[0].rebuilt[-1][:7])[1]
        day = month_start + timedelta(days=14)
        seconds, changed, per_unit = await _timed_refresh(
            engine, catalog, day, day + timedelta(days=1)
        )
        timings.append(
            (
                f"new rows in one day ({day:%Y-%m-%d}), then build:"
                f" {_rebuilt(changed)} partitions per rollup",
                seconds,
            )
        )
        timings += [
            (f"of which the {len(units[unit])} rollups by {unit}: the partition of that day", spent)
            for unit, spent in per_unit.items()
        ]
        seconds, changed, _ = await _timed_refresh(engine, catalog, month_start, month_end)
        timings.append(
            (
                f"new rows in every day of {month_start:%Y-%m}, then build:"
                f" {_rebuilt(changed)} partitions per rollup",
                seconds,
            )
        )
        started = time.perf_counter()
        await refresh_rollups(engine, catalog)
        timings.append(("refresh with nothing changed", time.perf_counter() - started))
        wall, cpu = await _freshness_check_ms(engine, catalog)
        timings.append(
            (f"freshness check of a routed query (6 months), ms, median of {_CHECKS}", wall)
        )
        timings.append(("the same check's CPU time in this process, ms", cpu))
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
    lines += [
        "",
        "| store | rollup build | seconds | / full build |",
        "| --- | --- | ---: | ---: |",
    ]
    for run in runs:
        full = next((seconds for label, seconds in run.timings if label.startswith("full")), 0.0)
        for label, seconds in run.timings:
            ratio = (
                ""
                if label.startswith(("seed", "freshness", "the same")) or not full
                else seconds / full
            )
            shown = f"{ratio:.3f}" if isinstance(ratio, float) else ratio
            lines.append(f"| {run.store} | {label} | {seconds:.2f} | {shown} |")
    return "\n".join(lines)
