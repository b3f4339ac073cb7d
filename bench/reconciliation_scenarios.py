"""The built-in reconciliation (orders versus the ledger) on a seeded store: time, rows, statements.

The comparison runs in the database (both sides stacked and grouped by key), so its time
should grow with the rows compared and its statement count stay the same at every scale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from dataintel.services.reconciliation import (
    ReconcileOverrides,
    SqlReconciliationService,
    load_comparisons,
)
from dataintel.settings import Settings
from dataintel.store.engine import create_engine

COMPARISON = "orders_vs_ledger"


@dataclass(frozen=True, slots=True)
class ReconciliationTiming:
    """One run of the comparison on a store of one scale."""

    scale: int
    rows_compared: int
    seconds: float
    statements: int
    status: str


async def time_reconciliation(url: str, scale: int) -> ReconciliationTiming:
    """Runs the built-in comparison once on the store at ``url`` (seeded at ``scale``)."""
    engine = create_engine(
        Settings(
            database_url=url, database_timeout_seconds=600, store_call_timeout_seconds=600
        ).store
    )
    statements = 0

    def count(*_arguments: Any) -> None:
        nonlocal statements
        statements += 1

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        service = SqlReconciliationService(engine, load_comparisons())
        started = time.perf_counter()
        run = await service.run(COMPARISON, ReconcileOverrides(), "bench")
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    report = run.report
    rows = report.left.rows + report.right.rows if report is not None else 0
    return ReconciliationTiming(scale, rows, seconds, statements, run.status)


def reconciliation_table(timings: list[ReconciliationTiming]) -> str:
    """A markdown table of the runs, with time per 100,000 rows against the first."""
    lines = [
        f"| {COMPARISON} | rows compared | seconds | µs per row | statements | status |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for timing in timings:
        per_row = timing.seconds / timing.rows_compared * 1e6 if timing.rows_compared else 0.0
        lines.append(
            f"| scale {timing.scale} | {timing.rows_compared:,} | {timing.seconds:.2f}"
            f" | {per_row:.1f} | {timing.statements} | {timing.status} |"
        )
    return "\n".join(lines)
