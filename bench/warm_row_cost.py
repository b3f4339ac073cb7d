"""What the warm planned row's request costs in process: CPU time, or instructions.

The 50-orders query (``bench.planned_scenarios.ORDERS_50``) POSTed through the whole app
(response cache off, entity cache warm, rate limit off, planned execution on), called as an
ASGI app with no server, beside plain graphql-core over the same records in memory
(``bench.plain_graphql``), called the same way. The seeded SQLite store is made in a
temporary directory.

    python -m bench.warm_row_cost [iterations]

prints thread CPU microseconds per request (best of three runs) for both. Instructions, which
a loaded machine does not change:

    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \\
        --toggle-collect=filterfalse_next python -m bench.warm_row_cost 60 gateway

``Collected`` / iterations = instructions per request (``plain`` instead of ``gateway`` for the
baseline). The requests are driven synchronously inside ``itertools.filterfalse`` (a warm
request never waits on anything), with instrumentation turned on just before them, after
30 warm-up requests and ``gc.freeze()`` (as the server freezes its startup objects).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from bench.in_process import count_instructions, prepare_store
from bench.plain_graphql import create_app as plain_app
from bench.planned_scenarios import ORDERS_50
from dataintel.app import create_app
from dataintel.settings import Settings

BODY = orjson.dumps({"query": ORDERS_50})


def _asgi_call(app: Any) -> Callable[[], Awaitable[None]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 40_000),
        "server": ("bench", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def call() -> None:
        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and b'"errors"' in message["body"]:
                raise RuntimeError(f"the request failed: {message['body'][:300]!r}")

        await app(dict(scope), receive, send)
        if status != 200:
            raise RuntimeError(f"in-process request answered {status}")

    return call


async def _cpu(call: Callable[[], Awaitable[None]], iterations: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.thread_time()
        for _ in range(iterations):
            await call()
        best = min(best, (time.thread_time() - started) / iterations * 1e6)
    return best


async def _measure(database_url: str, iterations: int, counted: str | None) -> None:
    settings = Settings(
        database_url=database_url,
        response_cache_enabled=False,
        rate_limit_enabled=False,
        planned_execution=True,
        log_level="warning",
    )
    gateway: Any = create_app(settings)
    os.environ["DATAINTEL_DATABASE_URL"] = database_url
    plain = plain_app()
    async with gateway.router.lifespan_context(gateway):
        calls = {"gateway": _asgi_call(gateway), "plain": _asgi_call(plain)}
        for call in calls.values():
            for _ in range(30):
                await call()
        gc.freeze()
        if counted is not None:
            count_instructions(calls[counted], iterations)
            return
        for round_number in range(3):
            mine = await _cpu(calls["gateway"], iterations)
            theirs = await _cpu(calls["plain"], max(iterations // 8, 1))
            print(
                f"round {round_number + 1}: gateway {mine:.1f} µs, plain graphql-core"
                f" {theirs:.1f} µs, plain / gateway {theirs / mine:.2f}x"
            )


def main() -> None:
    """CPU per request of both (or, under callgrind, the requests alone of the one named)."""
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    counted = sys.argv[2] if len(sys.argv) > 2 else None
    with tempfile.TemporaryDirectory() as directory:
        url = asyncio.run(prepare_store(Path(directory)))
        asyncio.run(_measure(url, iterations, counted))


if __name__ == "__main__":
    main()
