"""Cache scenarios of the dashboard query: off, every read missing, hits, and the store down.

Every row runs in this same process and run, so the ratios between rows are what to read.
Redis rows need a ``redis-server`` on the PATH (a throwaway one is started on a free port).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from starlette.applications import Starlette

from bench.harness import Measurement, measure, running
from dataintel.settings import Settings

_NO_CACHE: dict[str, Any] = {"cache_enabled": False, "response_cache_enabled": False}
# TTL 0: every read misses and loads, yet leaves an entry that can stand in for a failure.
_ALWAYS_MISS: dict[str, Any] = {
    "cache_ttl_seconds": 0,
    "cache_features_ttl_seconds": 0,
    "cache_analytics_ttl_seconds": 0,
}


async def cache_scenarios(
    url: str, body: dict[str, Any], *, requests: int, concurrency: int
) -> list[Measurement]:
    """The cache rows of the table, with Redis rows when a redis-server is available."""
    base: dict[str, Any] = {"database_url": url, "log_level": "warning"}
    rows: list[tuple[str, dict[str, Any]]] = [
        ("cache off", _NO_CACHE),
        ("cache miss (memory)", _ALWAYS_MISS),
        ("cache hit (memory)", {}),
    ]
    results = []
    with redis_server() as redis_url:
        if redis_url is not None:
            shared = {"redis_url": redis_url}
            rows += [
                ("cache miss (memory + redis)", {**shared, **_ALWAYS_MISS}),
                ("cache hit (memory + redis)", shared),
                ("cache hit (redis only)", {**shared, "cache_memory_entries": 0}),
            ]
        for scenario, overrides in rows:
            settings = Settings(**base, **overrides)
            async with running(settings) as (app, client):
                results.append(
                    await measure(
                        scenario, app, client, body, requests=requests, concurrency=concurrency
                    )
                )
        # Quiet: every failed store call would log a warning.
        quiet = {**base, "log_level": "error"}
        settings = Settings(**quiet, **_ALWAYS_MISS, store_breaker_reset_seconds=60)
        async with running(settings) as (app, client):
            await _warm(client, body)
            async with _store_down(app, settings):
                results.append(
                    await measure(
                        "store down, stale from cache",
                        app,
                        client,
                        body,
                        requests=requests,
                        concurrency=concurrency,
                    )
                )
    return results


async def _warm(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/graphql", json=body)
    if response.status_code != 200 or "errors" in response.json():
        raise RuntimeError(f"warm-up request failed: {response.text[:500]}")


@asynccontextmanager
async def _store_down(app: Starlette, settings: Settings) -> AsyncIterator[None]:
    """Puts garbage where the SQLite store was, as a disk fault would, and back after."""
    path = settings.store.sqlite_path
    assert path is not None
    kept = path.with_name(path.name + ".kept")
    engine = app.state.runtime.engine
    await engine.dispose()
    path.rename(kept)
    path.write_bytes(b"this is not a SQLite database" * 200)
    try:
        yield
    finally:
        await engine.dispose()
        path.unlink()
        kept.rename(path)


@contextmanager
def redis_server() -> Iterator[str | None]:
    """A throwaway redis-server on a free port, or None when none is installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_until_it_answers(port, process)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_it_answers(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not start on port {port}")
