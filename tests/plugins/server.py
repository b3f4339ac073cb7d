"""A real ``python -m dataintel serve`` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# A failure guard, not a speed goal: a first start migrates, seeds and materializes, which took
# over a minute on a busy 2-core machine running the suite on two workers.
STARTUP_SECONDS = 180.0


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def healthz_answers(origin: str) -> bool:
    """True once /healthz answers 200; proxies are bypassed, the server is on loopback."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{origin}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True, slots=True)
class ServedGateway:
    """A started server process: its origin, the process, and the file its output goes to."""

    origin: str
    process: subprocess.Popen[bytes]
    log_path: Path


@contextmanager
def running_gateway(tmp_path: Path, **environment: str) -> Iterator[str]:
    """Serves on a fresh SQLite store under ``tmp_path``; yields the origin, then stops it."""
    with served_gateway(tmp_path, **environment) as served:
        yield served.origin


@contextmanager
def served_gateway(tmp_path: Path, **environment: str) -> Iterator[ServedGateway]:
    """Like `running_gateway`, yielding the process too (to signal it); stops it at the end."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATAINTEL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'served.db'}",
        "DATAINTEL_LOG_FORMAT": "json",
        # Stopping at the end of a test need not wait out a load balancer's drain period.
        "DATAINTEL_SHUTDOWN_DRAIN_SECONDS": "0",
        **environment,
    }
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "dataintel", *serve],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not healthz_answers(origin):
            if server.poll() is not None:
                pytest.fail(f"the server exited with {server.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no /healthz within {STARTUP_SECONDS}s:\n{log_path.read_text()}")
            # Not a fixed sleep: a short pause between polls, bounded by the deadline above.
            time.sleep(0.1)
        yield ServedGateway(origin, server, log_path)
    finally:
        if server.poll() is None:
            server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
