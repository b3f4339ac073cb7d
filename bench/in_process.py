"""Shared by the bench's in-process tools: a fresh seeded store, and requests counted by
callgrind.

``count_instructions`` drives requests synchronously inside ``itertools.filterfalse`` (run
callgrind with ``--toggle-collect=filterfalse_next``), with instrumentation turned on just
before them (``callgrind_control -i on``), so the setup runs at near native speed.
"""

from __future__ import annotations

import collections
import itertools
import os
import subprocess
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path

from dataintel.loop_turns import endless_slice
from dataintel.store.seed import migrate_and_seed


async def prepare_store(directory: Path) -> str:
    """A freshly migrated SQLite store seeded at scale 1, in ``directory``."""
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    await migrate_and_seed(url)
    return url


def count_instructions(call: Callable[[], Awaitable[None]], iterations: int) -> None:
    """Runs ``call`` ``iterations`` times, each to its end without the event loop: a request
    that waits on anything cannot be counted this way and raises."""

    def one(_: int) -> bool:
        coroutine = call()
        assert isinstance(coroutine, Coroutine)
        try:
            coroutine.send(None)
        except StopIteration:
            return False
        coroutine.close()
        raise RuntimeError("a request waited on something: it cannot be counted this way")

    endless_slice()
    subprocess.run(
        ["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True
    )
    collections.deque(itertools.filterfalse(one, range(iterations)), maxlen=0)
