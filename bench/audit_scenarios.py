"""Concurrent audit appends: one locked transaction per entry (how appends were written
before the audit writer) versus the writer's batches, on a fresh SQLite store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from dataintel.services.audit import SUCCESS, AuditEvent, SqlAuditService
from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade

PER_ENTRY = "one transaction per entry"
BATCHED = "audit writer (batches)"


def _event(number: int) -> AuditEvent:
    return AuditEvent(f"user:{number % 7}", "auth.login", f"user:{number}", SUCCESS)


async def _timed(
    entries: int, concurrency: int, append: Callable[[int], Awaitable[object]]
) -> float:
    """Entries per second with ``concurrency`` appenders running at once."""
    numbers = iter(range(entries))

    async def appender() -> None:
        for number in numbers:
            await append(number)

    started = time.perf_counter()
    await asyncio.gather(*(appender() for _ in range(concurrency)))
    return entries / (time.perf_counter() - started)


async def audit_rows(directory: Path, entries: int, concurrency: int) -> list[tuple[str, float]]:
    """Entries per second, each way, on its own fresh store."""
    rows: list[tuple[str, float]] = []
    for label in (PER_ENTRY, BATCHED):
        engine = create_engine(
            Settings(
                database_url=f"sqlite+aiosqlite:///{directory / f'audit-{len(rows)}.db'}"
            ).store
        )
        try:
            await upgrade(engine)
            audit = SqlAuditService(engine)

            async def per_entry(number: int, audit: SqlAuditService = audit) -> None:
                async with audit.transaction() as connection:
                    await audit.append_in(connection, _event(number))

            async def batched(number: int, audit: SqlAuditService = audit) -> None:
                await audit.append(_event(number))

            chosen = per_entry if label == PER_ENTRY else batched
            rows.append((label, await _timed(entries, concurrency, chosen)))
            assert (await audit.verify()).intact
        finally:
            await engine.dispose()
    return rows


def audit_table(rows: list[tuple[str, float]], entries: int, concurrency: int) -> str:
    """A Markdown table of entries per second, as ratios of the per-entry way."""
    base = rows[0][1]
    lines = [
        f"audit appends, {entries} entries, {concurrency} concurrent appenders (SQLite):",
        "| scenario | entries/s | vs baseline |",
        "| --- | ---: | ---: |",
    ]
    lines.extend(f"| {label} | {rate:,.0f} | {rate / base:.2f}x |" for label, rate in rows)
    return "\n".join(lines)
