"""Every shell block of README.md and docs/*.md marked runnable runs as printed.

A block is runnable when the line before its ```sh fence is ``<!-- runnable -->`` (it runs in
a fresh directory with its own SQLite store) or ``<!-- runnable: server -->`` (it runs beside
a server on the demo data, started by this test; ``127.0.0.1:8000`` in the block is that
server's address). Blocks run with ``bash -euo pipefail`` and the venv's bin first on PATH,
as after ``. .venv/bin/activate``; nothing but loopback is reached. See docs/development.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.plugins.cli import clean_environment
from tests.plugins.redis_server import RedisServer, free_port
from tests.plugins.store import SeededTemplate

ROOT = Path(__file__).parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- runnable(?P<server>: server)? -->\n", re.MULTILINE)
FENCED = re.compile(r"```sh\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
DOCUMENTED_ADDRESS = re.compile(r"(127\.0\.0\.1|localhost):8000")
BLOCK_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True, slots=True)
class Block:
    """One runnable block: where it is, whether it needs the server, and its text."""

    where: str
    needs_server: bool
    body: str


def runnable_blocks() -> list[Block]:
    blocks = []
    for path in DOCUMENTS:
        text = path.read_text()
        for marker in MARKER.finditer(text):
            line = text.count("\n", 0, marker.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            fenced = FENCED.match(text, marker.end())
            # A marker not followed by a sh block would silently run nothing.
            assert fenced is not None, f"{where}: a runnable marker must precede a ```sh block"
            blocks.append(Block(where, marker.group("server") is not None, fenced["body"]))
    return blocks


BLOCKS = runnable_blocks()


def run_block(block: Block, directory: Path, environment: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.body],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_SECONDS,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.where} exited {result.returncode}\n--- block\n{block.body}"
        f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
    )


@dataclass(frozen=True, slots=True)
class DocServer:
    """`dataintel serve` on the demo data, in its own directory."""

    directory: Path
    port: int
    environment: dict[str, str]


@pytest.fixture(scope="module")
def doc_server(
    seeded_sqlite: SeededTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DocServer]:
    directory = tmp_path_factory.mktemp("doc_server")
    (directory / "var").mkdir()
    shutil.copyfile(seeded_sqlite.path, directory / "var" / "dataintel.db")
    # A Redis of its own: trusted documents need one, and the session's is emptied per test.
    redis = RedisServer(tmp_path_factory.mktemp("doc_redis"))
    redis.start()
    port = free_port()
    environment = clean_environment(
        DATAINTEL_PORT=str(port), DATAINTEL_LOG_FORMAT="json", DATAINTEL_REDIS_URL=redis.url
    )
    log = (directory / "server.log").open("w")
    server = subprocess.Popen(
        ["dataintel", "serve"], cwd=directory, env=environment, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, (directory / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not become ready in time"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield DocServer(directory, port, environment)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        redis.stop()


def test_the_docs_have_runnable_blocks() -> None:
    assert any(block.needs_server for block in BLOCKS)
    assert any(not block.needs_server for block in BLOCKS)


@pytest.mark.parametrize("block", BLOCKS, ids=[block.where for block in BLOCKS])
def test_block_runs(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if not block.needs_server:
        directory = tmp_path / "fresh"
        directory.mkdir()
        run_block(block, directory, clean_environment())
        return
    server: DocServer = request.getfixturevalue("doc_server")
    address = f"127.0.0.1:{server.port}"
    local = Block(block.where, True, DOCUMENTED_ADDRESS.sub(address, block.body))
    run_block(local, server.directory, server.environment)
