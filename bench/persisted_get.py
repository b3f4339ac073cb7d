"""A persisted query over GET answered from the response cache, Redis configured, against a
bare Starlette app returning the same bytes: both served by uvicorn in their own process,
loaded from a third (wrk, else bench.load). Then what each stage of such a hit costs,
measured in this process over the same settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import structlog
from starlette.requests import Request
from starlette.responses import Response

from bench.bare_app import bare_app
from bench.load import HEADERS, Load, run_load
from dataintel.app import create_app
from dataintel.gateway.pipeline import QUERIES_ONLY, PipelineInput, RequestPipeline
from dataintel.http.graphql_endpoint import GraphQLEndpoint
from dataintel.http.media_types import JSON
from dataintel.http.query_strings import request_from_query_params
from dataintel.http.rate_limit import RequestRateLimitMiddleware
from dataintel.observability.logging import access_log
from dataintel.observability.request_context import request_id_from
from dataintel.settings import Settings

ORDERS = (
    "query Orders { orders(first: 50) {"
    " nodes { id totalCents status customer { id name tier } } } }"
)
WHOLE = "whole request (in-process ASGI)"
BARE = "bare Starlette, same bytes (in-process ASGI)"
ROW = "persisted query over GET, response-cache hit, Redis"
BASELINE = "bare Starlette, same bytes"
HASH = hashlib.sha256(ORDERS.encode()).hexdigest()
EXTENSIONS = orjson.dumps({"persistedQuery": {"version": 1, "sha256Hash": HASH}}).decode()
PATH = f"/graphql?operationName=Orders&extensions={quote(EXTENSIONS)}"


@dataclass(frozen=True, slots=True)
class Row:
    """One server's load measured in this run."""

    scenario: str
    load: Load


def gateway_environment(database_url: str, redis_url: str) -> dict[str, str]:
    """The gateway's settings: production defaults, Redis, and a per-client limit so high
    that the load (one client address) is counted but never refused."""
    return {
        "DATAINTEL_DATABASE_URL": database_url,
        "DATAINTEL_REDIS_URL": redis_url,
        "DATAINTEL_RATE_LIMIT_REQUESTS": str(10**9),
        "DATAINTEL_METRICS_ENABLED": "true",
    }


def persisted_get_rows(
    database_url: str, redis_url: str, *, connections: int, seconds: float, rounds: int = 2
) -> list[Row]:
    """The gateway's row and its baseline, alternated ``rounds`` times, averaged."""
    environment = {**os.environ, **gateway_environment(database_url, redis_url)}
    gateway_port = _free_port()
    factory = "dataintel.app:create_app_from_environment"
    with (
        tempfile.TemporaryDirectory() as directory,
        _uvicorn(["--factory", factory], gateway_port, environment),
    ):
        body = _register(gateway_port)
        body_file = Path(directory) / "body.json"
        body_file.write_bytes(body)
        bare_port = _free_port()
        bare_environment = {**os.environ, "BENCH_BODY_FILE": str(body_file)}
        with _uvicorn(["bench.bare_app:app"], bare_port, bare_environment):
            urls = {
                ROW: f"http://127.0.0.1:{gateway_port}{PATH}",
                BASELINE: f"http://127.0.0.1:{bare_port}{PATH}",
            }
            for url in urls.values():
                run_load(url, connections=connections, seconds=1)
            loads: dict[str, list[Load]] = {name: [] for name in urls}
            for _ in range(rounds):
                for name, url in urls.items():
                    loads[name].append(run_load(url, connections=connections, seconds=seconds))
    return [Row(name, _mean(measured)) for name, measured in loads.items()]


def rows_table(rows: list[Row]) -> str:
    """The row with its ratio to the baseline, and the latency spread."""
    base = next(row for row in rows if row.scenario == BASELINE).load.requests_per_second
    lines = [
        "| scenario | load | req/s | vs baseline | p50 ms | p99 ms | p99/p50 | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        load = row.load
        lines.append(
            f"| {row.scenario} | {load.tool} | {load.requests_per_second:,.0f} |"
            f" {load.requests_per_second / base:.2f}x | {load.p50_ms:.2f} | {load.p99_ms:.2f} |"
            f" {load.p99_ms / load.p50_ms:.1f} | {load.errors} |"
        )
    return "\n".join(lines)


def _mean(loads: list[Load]) -> Load:
    return Load(
        loads[0].tool,
        statistics.fmean(load.requests_per_second for load in loads),
        statistics.fmean(load.p50_ms for load in loads),
        statistics.fmean(load.p99_ms for load in loads),
        sum(load.errors for load in loads),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def _uvicorn(target: list[str], port: int, environment: dict[str, str]) -> Iterator[None]:
    """uvicorn in its own process (one worker, its default uvloop and httptools)."""
    command = [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{' '.join(target)} exited with {process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/graphql", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(target)} did not answer on port {port}")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def _register(port: int) -> bytes:
    """Registers the document by APQ and answers the GET twice: the second is a cache hit."""
    base = f"http://127.0.0.1:{port}"
    registered = httpx.post(
        f"{base}/graphql",
        json={"query": ORDERS, "extensions": orjson.loads(EXTENSIONS)},
        headers={"Accept": "application/json"},
    )
    registered.raise_for_status()
    bodies = []
    for _ in range(2):
        answer = httpx.get(base + PATH, headers=HEADERS)
        if answer.status_code != 200 or b'"errors"' in answer.content:
            raise RuntimeError(f"persisted GET failed: {answer.text[:500]}")
        bodies.append(answer.content)
    if "Age" not in answer.headers:
        raise RuntimeError("the second persisted GET was not a response-cache hit")
    return bodies[-1]


async def stage_costs(
    database_url: str, redis_url: str, *, iterations: int = 2000
) -> list[tuple[str, float]]:
    """Microseconds per call of each stage of a response-cache hit, and of the whole request."""
    environment = gateway_environment(database_url, redis_url)
    settings = Settings(
        database_url=environment["DATAINTEL_DATABASE_URL"],
        redis_url=environment["DATAINTEL_REDIS_URL"],
        rate_limit_requests=10**9,
    )
    app = create_app(settings)
    streams = [h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler)]
    with (
        open(os.devnull, "w") as devnull,  # noqa: ASYNC230 (nothing is read or written)
        open(os.devnull, "wb") as binary_devnull,  # noqa: ASYNC230
        access_log.diverted(binary_devnull),
    ):
        # The access log is measured (as the JSON lines of production), not printed.
        kept = [handler.setStream(devnull) for handler in streams]
        try:
            async with app.router.lifespan_context(app):
                return await _stages(app, settings, iterations)
        finally:
            for handler, stream in zip(streams, kept, strict=True):
                handler.setStream(stream)


class StageClock:
    """A pipeline observer adding up the CPU time of each named stage of the pipeline."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.runs = 0
        self._last = 0.0

    @contextlib.contextmanager
    def around(self) -> Iterator[None]:
        self.runs += 1
        self._last = time.thread_time()
        yield

    def stage_finished(self, stage: str, state: object) -> None:
        now = time.thread_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now

    def finished(self, outcome: object) -> None:
        """Nothing to add: the stages are counted as they finish."""


async def _stages(app: Any, settings: Settings, iterations: int) -> list[tuple[str, float]]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await client.post(
            "/graphql", json={"query": ORDERS, "extensions": orjson.loads(EXTENSIONS)}
        )
        for _ in range(2):
            (await client.get(PATH, headers=HEADERS)).raise_for_status()
    route = next(r for r in app.routes if getattr(r, "path", None) == settings.http.graphql_path)
    endpoint: GraphQLEndpoint = route.endpoint
    pipeline: RequestPipeline = app.state.pipeline
    limiting = next(m for m in app.user_middleware if m.cls is RequestRateLimitMiddleware)
    rate_limits = limiting.kwargs["rate_limits"]
    headers = {
        "host": "bench",
        "accept": "application/json",
        "apollo-require-preflight": "true",
    }
    params = {"operationName": "Orders", "extensions": EXTENSIONS}
    request = Request(_scope(headers))
    pipeline_input = PipelineInput(
        request=request_from_query_params(params),
        request_id="bench",
        headers=request.headers,
        client_address="127.0.0.1",
        allowed=QUERIES_ONLY,
        media_type=JSON,
    )
    outcome = await pipeline.run(pipeline_input)
    if outcome.response is None or outcome.response.response_cache != "hit":
        raise RuntimeError("the persisted GET is not answered from the response cache")
    response = outcome.response

    def request_id() -> None:
        with structlog.contextvars.bound_contextvars(request_id=request_id_from(None)):
            pass

    async def rate_limit() -> None:
        await rate_limits.clients.hit("127.0.0.1")

    def csrf() -> None:
        endpoint._csrf.check("GET", request.headers)

    def serialization() -> None:
        Response(response.encoded(), media_type=JSON)

    def access_line() -> None:
        access_log.info(
            "request",
            method="GET",
            path="/graphql",
            operation="Orders",
            cost=51,
            cache="hit",
            status=200,
            duration_ms=0.1,
        )

    transport_stages: list[tuple[str, Callable[[], Any]]] = [
        ("request id", request_id),
        ("rate limit", rate_limit),
        ("CSRF", csrf),
        ("serialization", serialization),
        ("access log", access_line),
    ]
    costs = [(name, await _time(stage, iterations)) for name, stage in transport_stages]
    clock = StageClock()
    pipeline.observers.append(clock)
    try:
        for _ in range(iterations):
            await pipeline.run(pipeline_input)
    finally:
        pipeline.observers.remove(clock)
    per_run = 1e6 / clock.runs
    costs[2:2] = [(f"pipeline: {stage}", s * per_run) for stage, s in clock.seconds.items()]
    costs.append((WHOLE, await _time(_asgi_call(app), iterations)))
    # The same bytes from a bare Starlette app, called the same way in this process: the
    # floor the whole request is compared with (uvicorn's own cost is added to both).
    bare = bare_app(response.encoded())
    costs.append((BARE, await _time(_asgi_call(bare), iterations)))
    return costs


def _scope(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": PATH.partition("?")[2].encode(),
        "root_path": "",
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 40_000),
        "server": ("bench", 80),
    }


def _asgi_call(app: Any) -> Callable[[], Awaitable[None]]:
    headers = {"host": "bench", **{name.lower(): value for name, value in HEADERS.items()}}

    async def call() -> None:
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(_scope(headers), receive, send)
        if status != 200:
            raise RuntimeError(f"in-process request answered {status}")

    return call


async def _time(stage: Callable[[], Any], iterations: int) -> float:
    """CPU microseconds per call, the best of three runs: on a shared machine, wall time
    mostly measures the other processes."""
    best = float("inf")
    is_async = asyncio.iscoroutinefunction(stage)
    for _ in range(3):
        started = time.thread_time()
        if is_async:
            for _ in range(iterations):
                await stage()
        else:
            for _ in range(iterations):
                stage()
        best = min(best, (time.thread_time() - started) / iterations * 1e6)
    return best


def stages_table(costs: list[tuple[str, float]]) -> str:
    """Each stage's cost and the sum, beside the whole request measured in the same way, the
    bare app's request, and the ratio of the two (the bare app's cost over the gateway's)."""
    lines = ["| stage of a response-cache hit | CPU µs per request |", "| --- | ---: |"]
    measured = dict(costs)
    stages = [(name, micros) for name, micros in costs if name not in (WHOLE, BARE)]
    for name, micros in stages:
        lines.append(f"| {name} | {micros:.1f} |")
    lines.append(f"| **sum of the stages** | **{sum(m for _, m in stages):.1f}** |")
    whole, bare = measured[WHOLE], measured[BARE]
    lines.append(f"| {WHOLE} | {whole:.1f} |")
    lines.append(f"| {BARE} | {bare:.1f} |")
    lines.append(f"| **bare / whole (in process)** | **{bare / whole:.2f}x** |")
    return "\n".join(lines)
