"""Drives the real app in-process and measures throughput, latency and store statements."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.settings import Settings


@dataclass(frozen=True, slots=True)
class Measurement:
    """One scenario's numbers."""

    scenario: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statements_per_request: float
    cpu_ms_per_request: float
    """Process CPU time per request (every thread): steadier than req/s on a busy machine."""


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app with its lifespan running and an in-process client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield app, client


async def measure(
    scenario: str,
    app: Starlette,
    client: httpx.AsyncClient,
    body: dict[str, Any],
    *,
    requests: int,
    concurrency: int,
    warmup: int = 5,
) -> Measurement:
    """Sends ``requests`` copies of one request from ``concurrency`` workers."""
    for _ in range(warmup):
        await _send(client, body)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = app.state.runtime.engine
    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    latencies: list[float] = []
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await _send(client, body)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    ordered = sorted(latencies)
    return Measurement(
        scenario=scenario,
        requests=len(ordered),
        requests_per_second=len(ordered) / elapsed,
        p50_ms=statistics.median(ordered),
        p95_ms=ordered[min(len(ordered) - 1, round(len(ordered) * 0.95))],
        p99_ms=ordered[min(len(ordered) - 1, round(len(ordered) * 0.99))],
        statements_per_request=statements / len(ordered),
        cpu_ms_per_request=cpu * 1000 / len(ordered),
    )


async def _send(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/graphql", json=body)
    if response.status_code != 200 or "errors" in response.json():
        raise RuntimeError(f"benchmark request failed: {response.text[:500]}")


def table(measurements: list[Measurement], baseline: str) -> str:
    """A Markdown table, with each row's throughput as a ratio of the baseline's."""
    base = next(m for m in measurements if m.scenario == baseline).requests_per_second
    lines = [
        "| scenario | requests | req/s | vs baseline | p50 ms | p99 ms | statements/req"
        " | CPU ms/req |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measurements:
        lines.append(
            f"| {m.scenario} | {m.requests} | {m.requests_per_second:,.1f} | "
            f"{m.requests_per_second / base:.2f}x | {m.p50_ms:.1f} | {m.p99_ms:.1f} | "
            f"{m.statements_per_request:.1f} | {m.cpu_ms_per_request:.2f} |"
        )
    return "\n".join(lines)
