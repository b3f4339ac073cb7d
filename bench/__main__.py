"""`python -m bench`: a persisted query over GET answered from the response cache against a
bare Starlette app returning the same bytes (each in its own uvicorn process, loaded from a
third) with the cost of each stage of such a hit; then the reference dashboard query: loaders
on versus the per-item path, the cache (off, misses, hits, the store down), and the cost of
metrics and tracing."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

from bench.audit_scenarios import audit_rows, audit_table
from bench.cache_scenarios import cache_scenarios, redis_server
from bench.export_scenarios import export_scenarios, export_table, seeded_store
from bench.harness import Measurement, measure, running, table
from bench.in_process import prepare_store
from bench.observability import OFF, observability_scenarios
from bench.persisted_get import persisted_get_rows, rows_table, stage_costs, stages_table
from bench.planned_scenarios import planned_rows, planned_table
from bench.reconciliation_scenarios import (
    ReconciliationTiming,
    reconciliation_table,
    time_reconciliation,
)
from bench.rollup_scenarios import rollup_scenarios, rollup_table
from dataintel.settings import Settings

AUDIT_ENTRIES = 1000

DASHBOARD = """
query Dashboard {
  status { version }
  analytics(query: {
    measures: ["revenue", "order_count", "active_customers"]
    dimensions: ["region"]
    time: {granularity: WEEK, from: "2026-05-01", to: "2026-07-01"}
  }) {
    rows { time dimensions { value } measures { name value } }
    totals { name value }
  }
  orders(first: 50) {
    totalCount
    nodes {
      id placedAt status totalCents
      customer { id name region tier }
      items { quantity lineTotalCents product { id name category } }
    }
  }
}
"""


async def run(
    requests: int, concurrency: int
) -> tuple[list[Measurement], list[Measurement], list[Measurement], ReconciliationTiming]:
    """Every scenario, measured in this one run: loader rows, cache rows, observability rows,
    and the built-in reconciliation at the demo scale."""
    with tempfile.TemporaryDirectory() as directory:
        url = await prepare_store(Path(directory))
        reconciled = await time_reconciliation(url, 1)
        body = {"query": DASHBOARD}
        results = []
        for scenario, batching in (("dashboard, loaders", True), ("dashboard, per item", False)):
            # Without the cache: these rows measure the store round trips.
            settings = Settings(
                database_url=url,
                log_level="warning",
                loader_batching=batching,
                cache_enabled=False,
                response_cache_enabled=False,
            )
            async with running(settings) as (app, client):
                results.append(
                    await measure(
                        scenario, app, client, body, requests=requests, concurrency=concurrency
                    )
                )
        cached = await cache_scenarios(url, body, requests=requests, concurrency=concurrency)
        observed = await observability_scenarios(
            url, body, requests=requests, concurrency=concurrency
        )
        return results, cached, observed, reconciled


def persisted_get(connections: int, seconds: float) -> None:
    """The response-cache hit row, its baseline and the per-stage costs, printed."""
    with tempfile.TemporaryDirectory() as directory, redis_server() as redis_url:
        if redis_url is None:
            print("persisted GET row skipped: no redis-server on the PATH")
            return
        url = asyncio.run(prepare_store(Path(directory)))
        rows = persisted_get_rows(url, redis_url, connections=connections, seconds=seconds)
        load = os.getloadavg()[0]
        print(
            f"persisted query over GET, {connections} connections, {os.cpu_count()} cores,"
            f" load average {load:.1f} at the end (the machine may be shared: read the ratio):"
        )
        print(rows_table(rows))
        print()
        print(stages_table(asyncio.run(stage_costs(url, redis_url))))


def rollups(
    scale: int, postgres_server_url: str, *, sqlite: bool = True, reconcile: bool = True
) -> ReconciliationTiming | None:
    """The rollup scenarios' tables, printed; the reconciliation timing at that scale."""
    runs, reconciled = asyncio.run(
        rollup_scenarios(
            scale,
            requests=20,
            raw_requests=3,
            sqlite=sqlite,
            postgres_server_url=postgres_server_url or None,
            reconcile=reconcile,
        )
    )
    print(rollup_table(runs, scale))
    return reconciled


def main() -> None:
    """Runs the benchmarks and prints the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--connections", type=int, default=32, help="load connections (GET row)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per load run")
    parser.add_argument(
        "--only-persisted-get", action="store_true", help="only the GET row and its stages"
    )
    parser.add_argument(
        "--only-planned", action="store_true", help="only the planned-execution table"
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument(
        "--rollup-scale", type=int, default=10, help="seed scale of the rollup scenarios; 0: skip"
    )
    parser.add_argument(
        "--rollup-postgres",
        default="",
        help="PostgreSQL server URL (postgresql+asyncpg://user@host:port) for the rollup"
        " scenarios on PostgreSQL too; its database rollups_bench_s<scale>_v<n> is kept",
    )
    parser.add_argument(
        "--only-rollups", action="store_true", help="only the rollup scenarios and their builds"
    )
    parser.add_argument(
        "--rollup-no-sqlite", action="store_true", help="rollup scenarios on PostgreSQL only"
    )
    parser.add_argument(
        "--planned-seconds",
        type=float,
        default=10,
        help="seconds of load per planned-execution row (servers loaded by wrk); 0: skip",
    )
    parser.add_argument(
        "--export-scale",
        type=int,
        default=5,
        help="seed scale of the export scenarios (10,000 orders per unit); 0: skip",
    )
    arguments = parser.parse_args()
    if arguments.only_rollups:
        rollups(
            arguments.rollup_scale,
            arguments.rollup_postgres,
            sqlite=not arguments.rollup_no_sqlite,
            reconcile=False,
        )
        return
    if arguments.only_planned:
        with tempfile.TemporaryDirectory() as directory:
            url = asyncio.run(prepare_store(Path(directory)))
            print(planned_table(planned_rows(url, arguments.planned_seconds)))
            print(f"load average {os.getloadavg()[0]:.1f} at the end")
        return
    persisted_get(arguments.connections, arguments.seconds)
    if arguments.only_persisted_get:
        return
    print()
    measurements, cached, observed, reconciled = asyncio.run(
        run(arguments.requests, arguments.concurrency)
    )
    print(table(measurements, baseline="dashboard, per item"))
    print()
    print(table(cached, baseline="cache miss (memory)"))
    print()
    print(table(observed, baseline=OFF))
    if arguments.planned_seconds > 0:
        with tempfile.TemporaryDirectory() as directory:
            url = asyncio.run(prepare_store(Path(directory)))
            print()
            print(planned_table(planned_rows(url, arguments.planned_seconds)))
    reconciliations = [reconciled]
    if arguments.rollup_scale > 0:
        print()
        reconciled_at_scale = rollups(arguments.rollup_scale, arguments.rollup_postgres)
        if reconciled_at_scale is not None:
            reconciliations.append(reconciled_at_scale)
    print()
    print(reconciliation_table(reconciliations))
    with tempfile.TemporaryDirectory() as directory:
        audited = asyncio.run(audit_rows(Path(directory), AUDIT_ENTRIES, arguments.concurrency))
    print()
    print(audit_table(audited, AUDIT_ENTRIES, arguments.concurrency))
    if arguments.export_scale > 0:
        with tempfile.TemporaryDirectory() as directory:
            url = asyncio.run(seeded_store(Path(directory), arguments.export_scale))
            exports = export_scenarios(url, Path(directory))
        print()
        print(f"export, seed scale {arguments.export_scale}, one process per format:")
        print(export_table(exports))


main()
