"""A real ``python -m dataintel worker`` process, which a test may stop, kill or restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60.0


class WorkerProcess:
    """One worker process with its environment; its log goes to a file under the test's dir."""

    def __init__(self, environment: Mapping[str, str], log_path: Path) -> None:
        self._environment = {**os.environ, **environment}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, concurrency: int = 2) -> None:
        """Starts the worker and waits until it logged that it started."""
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dataintel", "worker", "--concurrency", str(concurrency)],
                cwd=REPO,
                env=self._environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while b"worker started" not in self.log_path.read_bytes()[offset:]:
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the worker did not start within {STARTUP_SECONDS}s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        """What the worker wrote so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, number: int) -> None:
        """Sends a signal (SIGKILL: dies at once, as a crashed or OOM-killed worker)."""
        assert self.process is not None
        self.process.send_signal(number)

    def wait(self, timeout: float = 30.0) -> int:
        """Waits for the process to end; its exit status."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Workers a test starts (append to the list); every one still running is stopped after."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()
