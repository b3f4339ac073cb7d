"""What one response-cache hit over GET costs in process: CPU time, or instructions.

The persisted-GET row's request (``bench.persisted_get.PATH``), through the whole app,
answered from the response cache, called as an ASGI app with no server (as the stage
table's whole-request row), beside the bare Starlette app answering the same bytes.

    python -m bench.hit_cost [iterations]

prints thread CPU microseconds per request (best of three runs) for both. On a shared
machine CPU time still moves with the load; instruction counts do not:

    BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \\
        --toggle-collect=filterfalse_next python -m bench.hit_cost 1000 gateway

counts only the hits (``Collected`` / iterations = instructions per hit; ``bare`` instead of
``gateway`` for the baseline). The hits are driven synchronously inside
``itertools.filterfalse`` (a hit never waits on anything), and instrumentation is turned on
just before them (``callgrind_control -i on``), so the setup runs at near native speed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.bare_app import bare_app
from bench.cache_scenarios import redis_server
from bench.in_process import count_instructions, prepare_store
from bench.load import HEADERS
from bench.persisted_get import EXTENSIONS, ORDERS, PATH, _asgi_call, _time
from dataintel.app import create_app
from dataintel.observability.logging import access_log
from dataintel.settings import Settings


async def _measure(database_url: str, redis_url: str, iterations: int, counted: str | None) -> None:
    settings = Settings(database_url=database_url, redis_url=redis_url, rate_limit_requests=10**9)
    app: Any = create_app(settings)
    with open(os.devnull, "wb") as devnull, access_log.diverted(devnull):  # noqa: ASYNC230
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40_000))
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                extensions = orjson.loads(EXTENSIONS)
                await client.post("/graphql", json={"query": ORDERS, "extensions": extensions})
                for _ in range(2):
                    answer = await client.get(PATH, headers=HEADERS)
                    answer.raise_for_status()
            if "age" not in answer.headers:
                raise RuntimeError("the persisted GET is not answered from the response cache")
            calls = {"gateway": _asgi_call(app), "bare": _asgi_call(bare_app(answer.content))}
            for call in calls.values():
                for _ in range(200):
                    await call()
            if counted is not None:
                count_instructions(calls[counted], iterations)
                return
            for round_number in range(3):
                gateway = await _time(calls["gateway"], iterations)
                bare = await _time(calls["bare"], iterations)
                print(
                    f"round {round_number + 1}: gateway {gateway:.1f} µs, bare {bare:.1f} µs,"
                    f" bare / gateway {bare / gateway:.2f}x"
                )


def main() -> None:
    """CPU per hit (or, under callgrind, the hits alone of the target named)."""
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    counted = sys.argv[2] if len(sys.argv) > 2 else None
    if os.environ.get("BENCH_CALLGRIND") and counted is None:
        counted = "gateway"
    with tempfile.TemporaryDirectory() as directory, redis_server() as redis_url:
        if redis_url is None:
            raise SystemExit("no redis-server on the PATH")
        url = asyncio.run(prepare_store(Path(directory)))
        asyncio.run(_measure(url, redis_url, iterations, counted))


if __name__ == "__main__":
    main()
