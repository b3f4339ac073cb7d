"""A load generator in its own process: wrk when installed, else a small asyncio client.

Both keep ``connections`` HTTP/1.1 keep-alive connections busy with one GET for ``seconds``
and report requests per second and the latency percentiles.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Load:
    """What one load run measured."""

    tool: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


HEADERS = {"Accept": "application/json", "Apollo-Require-Preflight": "true"}
"""Sent with every GET: what a browser client of persisted queries sends (CSRF prevention)."""


def run_load(url: str, *, connections: int, seconds: float, threads: int = 1) -> Load:
    """Loads ``url`` from a separate process; wrk when it is on the PATH."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        return _wrk(wrk, url, connections, seconds, threads)
    command = [sys.executable, "-m", "bench.load", url, str(connections), str(seconds)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return Load(**json.loads(output))


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(wrk: str, url: str, connections: int, seconds: float, threads: int) -> Load:
    headers = [part for name, value in HEADERS.items() for part in ("-H", f"{name}: {value}")]
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    command += [*headers, url]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"wrk said nothing measurable:\n{output}")
    percentiles = {
        int(match[1]): float(match[2]) * _UNITS[match[3]]
        for match in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    }
    failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", output)
    count = int(failed[1]) if failed else 0
    if errors:
        count += sum(int(errors[i]) for i in range(1, 5))
    return Load("wrk", float(rate[1]), percentiles[50], percentiles[99], count)


async def _python_load(url: str, connections: int, seconds: float) -> Load:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", *(f"{n}: {v}" for n, v in HEADERS.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length[1]) if length else 0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            latencies.append((time.perf_counter() - started) * 1000)
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return Load(
        "python",
        len(ordered) / elapsed,
        ordered[len(ordered) // 2],
        ordered[min(len(ordered) - 1, round(len(ordered) * 0.99))],
        errors,
    )


def main() -> None:
    """``python -m bench.load URL CONNECTIONS SECONDS``: one run, as JSON on stdout."""
    url, connections, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    load = asyncio.run(_python_load(url, connections, seconds))
    # A slotted dataclass has no __dict__.
    print(json.dumps(asdict(load)))


if __name__ == "__main__":
    main()
