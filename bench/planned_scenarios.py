"""The planned-execution rows: the 50-orders query served by real servers, loaded by wrk.

Each server runs in its own process (uvicorn, one worker) on a free port and is loaded from
another process: wrk when it is installed (32 connections), else a Python load generator.
All the servers are up for the whole run and loaded in turn, twice over, each for half its
seconds: the rates are the means of the two. Every row's baseline is measured in the same
run: plain graphql-core over the same records in memory (bench/plain_graphql.py) for the
entity-cache row, and today's path (the planned executor off) for the all-caches-off row.
On a shared machine, read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ORDERS_50 = "{ orders(first: 50) { nodes { id total status customer { id name tier } } } }"
CONNECTIONS = 32
ROUNDS = 2
"""Each row is loaded this many times, in turn with the others (``planned_rows``)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One server's numbers under load."""

    scenario: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    baseline: str | None = None
    target: float | None = None


def planned_rows(database_url: str, seconds: float) -> list[Row]:
    """Every row of the planned-execution table, in one run."""
    gateway = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "dataintel.app:create_app_from_environment",
    ]
    plain = [sys.executable, "-m", "uvicorn", "--factory", "bench.plain_graphql:create_app"]
    base = {
        "DATAINTEL_DATABASE_URL": database_url,
        "DATAINTEL_LOG_LEVEL": "warning",
        "DATAINTEL_AUTO_MIGRATE": "false",
        "DATAINTEL_AUTO_SEED": "false",
        "DATAINTEL_RESPONSE_CACHE_ENABLED": "false",
        "DATAINTEL_RATE_LIMIT_ENABLED": "false",
        "DATAINTEL_JWT_SECRET": "bench-signing-secret-" + "0" * 32,
    }
    warm = "orders-50, response cache off, entity cache warm"
    cold = "orders-50, all caches off (SQLite)"
    plain_row = "plain graphql-core, records in memory"
    scenarios: list[tuple[str, list[str], dict[str, str], str | None, float | None]] = [
        (plain_row, plain, base, None, None),
        (
            f"{warm}, graphql-core (today)",
            gateway,
            {**base, "DATAINTEL_PLANNED_EXECUTION": "false"},
            plain_row,
            None,
        ),
        (
            f"{warm}, planned",
            gateway,
            {**base, "DATAINTEL_PLANNED_EXECUTION": "true"},
            plain_row,
            9.0,
        ),
        (
            f"{cold}, today",
            gateway,
            {**base, "DATAINTEL_CACHE_ENABLED": "false", "DATAINTEL_PLANNED_EXECUTION": "false"},
            None,
            None,
        ),
        (
            f"{cold}, planned",
            gateway,
            {**base, "DATAINTEL_CACHE_ENABLED": "false", "DATAINTEL_PLANNED_EXECUTION": "true"},
            f"{cold}, today",
            3.0,
        ),
    ]
    # Every server is up for the whole run and each is loaded in turn, ROUNDS times over, for
    # an equal share of the seconds: a machine whose speed drifts during the run (a shared
    # host, a CPU's clock) then moves a row and its baseline alike, not only whichever was
    # loaded while it was slower.
    measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name, *_ in scenarios}
    with contextlib.ExitStack() as servers:
        urls = {
            name: servers.enter_context(_served(command, env))
            for name, command, env, *_ in scenarios
        }
        for _ in range(ROUNDS):
            for name, url in urls.items():
                measured[name].append(_load(url, seconds / ROUNDS))
    return [
        Row(
            name,
            statistics.fmean(rate for rate, _, _ in measured[name]),
            statistics.fmean(p50 for _, p50, _ in measured[name]),
            statistics.fmean(p99 for _, _, p99 in measured[name]),
            baseline,
            target,
        )
        for name, _, _, baseline, target in scenarios
    ]


def planned_table(rows: list[Row]) -> str:
    """A Markdown table: each row's ratio to its baseline, its target, and p99 / p50."""
    by_name = {row.scenario: row for row in rows}
    lines = [
        f"50-orders query, {CONNECTIONS} connections, one server process each, load from"
        f" {'wrk' if shutil.which('wrk') else 'a Python process'}; {os.cpu_count()} cores",
        "",
        "| scenario | req/s | baseline | vs baseline | target | p50 ms | p99 ms | p99/p50 |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ratio = ""
        if row.baseline is not None:
            ratio = f"{row.requests_per_second / by_name[row.baseline].requests_per_second:.2f}x"
        target = f">= {row.target:g}x" if row.target else ""
        spread = row.p99_ms / row.p50_ms if row.p50_ms else 0.0
        lines.append(
            f"| {row.scenario} | {row.requests_per_second:,.0f} | {row.baseline or ''} | {ratio}"
            f" | {target} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | {spread:.1f} |"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def _served(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """The server of ``command`` on a free port, answering and warmed: its GraphQL URL."""
    port = _free_port()
    process = subprocess.Popen(
        [
            *command,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        _wait_and_warm(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _load(url: str, seconds: float) -> tuple[float, float, float]:
    if shutil.which("wrk"):
        return _wrk(url, seconds)
    return _python_load(url, seconds)


def _wait_and_warm(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            response = httpx.post(url, json={"query": ORDERS_50}, timeout=10)
            if response.status_code == 200 and "errors" not in response.json():
                break
            raise RuntimeError(f"benchmark request failed: {response.text[:300]}")
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    for _ in range(50):
        httpx.post(url, json={"query": ORDERS_50}, timeout=10)


_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""


def _wrk(url: str, seconds: float) -> tuple[float, float, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_SCRIPT.format(body=json.dumps(json.dumps({"query": ORDERS_50}))))
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{CONNECTIONS}",
                f"-d{seconds:g}s",
                "--latency",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(script.name).unlink()
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw failed requests:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    return rate, _percentile(output, "50%"), _percentile(output, "99%")


def _percentile(output: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _python_load(url: str, seconds: float) -> tuple[float, float, float]:
    code = (
        "import asyncio, json, sys, time, httpx\n"
        "async def main(url, seconds, body):\n"
        "    latencies = []\n"
        "    end = time.perf_counter() + seconds\n"
        f"    limits = httpx.Limits(max_connections={CONNECTIONS})\n"
        "    async with httpx.AsyncClient(limits=limits) as c:\n"
        "        async def worker():\n"
        "            while time.perf_counter() < end:\n"
        "                t = time.perf_counter()\n"
        "                r = await c.post(url, json=body)\n"
        "                r.raise_for_status()\n"
        "                latencies.append((time.perf_counter() - t) * 1000)\n"
        f"        await asyncio.gather(*(worker() for _ in range({CONNECTIONS})))\n"
        "    latencies.sort()\n"
        "    print(json.dumps([len(latencies) / seconds, latencies[len(latencies) // 2],"
        " latencies[int(len(latencies) * 0.99)]]))\n"
        "asyncio.run(main(sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, url, str(seconds), json.dumps({"query": ORDERS_50})],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate, p50, p99 = json.loads(output)
    return float(rate), float(p50), float(p99)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
