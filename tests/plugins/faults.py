"""Faults injected into the real parts: a slowed store, a store file that cannot be read,
a Redis that stops or pauses, and polling with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette

from dataintel.app import Runtime, build_services
from dataintel.observability.drops import Drops
from dataintel.store.guarded import GuardedEngine, StoreEngine

T = TypeVar("T")


class DelayedEngine:
    """The real engine, with a delay or a hold before every connection block (test only).

    It counts the blocks asked for (``opened``) and those given up while they waited
    (``abandoned``, cut off by a time budget), so that a test can tell from counters, not
    from a clock, whether the gateway waited for the store or called it at all.
    """

    def __init__(self, engine: StoreEngine, delay_seconds: float) -> None:
        self._engine = engine
        self.delay_seconds = delay_seconds
        self.opened = 0
        self.abandoned = 0
        self._released = asyncio.Event()
        self._released.set()

    @property
    def dialect(self) -> Dialect:
        """The real engine's dialect."""
        return self._engine.dialect

    @property
    def held(self) -> bool:
        """True between `hold` and `release`."""
        return not self._released.is_set()

    def hold(self) -> None:
        """From now on, every connection block waits until `release` (a store that hangs)."""
        self._released.clear()

    def release(self) -> None:
        """Lets the held blocks and every later one through."""
        self._released.set()

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A real connection, after the delay."""
        return self._delayed(self._engine.connect)

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A real transaction, after the delay."""
        return self._delayed(self._engine.begin)

    @asynccontextmanager
    async def _delayed(
        self, open_block: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    ) -> AsyncIterator[AsyncConnection]:
        self.opened += 1
        try:
            await self._released.wait()
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
        except asyncio.CancelledError:
            self.abandoned += 1
            raise
        async with open_block() as connection:
            yield connection


def runtime_of(app: Starlette) -> Runtime:
    """The running app's runtime (its lifespan must have started)."""
    runtime: Runtime = app.state.runtime
    return runtime


def slow_down_store(app: Starlette, delay_seconds: float = 0) -> DelayedEngine:
    """Rebuilds the running app's services over a delayed store; set its delay to 0 to recover.

    With no delay it only counts the store calls; `hold` it to make the store hang.
    """
    runtime = runtime_of(app)
    delayed = DelayedEngine(runtime.engine, delay_seconds)
    store = GuardedEngine(
        delayed,
        runtime.platform.dependencies["store"],
        runtime.platform.store.batch_timeout_seconds,
    )
    platform = dataclasses.replace(runtime.platform, store=store)
    runtime.services = build_services(
        app.state.settings,
        runtime.engine,
        runtime.redis,
        platform,
        runtime.services.schema_usage,
        Drops(),
    )
    return delayed


class UnreadableStore:
    """Swaps a SQLite store's file for garbage (and back), as a disk fault would."""

    def __init__(self, app: Starlette, path: Path) -> None:
        self._app = app
        self._path = path
        self._kept = path.with_name(path.name + ".kept")

    async def break_(self) -> None:
        """Closes the pooled connections and puts garbage where the store was."""
        await runtime_of(self._app).engine.dispose()
        self._path.rename(self._kept)
        self._path.write_bytes(b"this is not a SQLite database" * 200)

    async def restore(self) -> None:
        """Puts the store back."""
        await runtime_of(self._app).engine.dispose()
        self._path.unlink()
        self._kept.rename(self._path)


async def eventually(check: Callable[[], Awaitable[T | None]], deadline_seconds: float = 10.0) -> T:
    """Polls ``check`` until it returns something truthy; fails at the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        outcome = await check()
        if outcome:
            return outcome
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {deadline_seconds:g}s: last {outcome!r}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def redis_paused(url: str, milliseconds: int) -> AsyncIterator[None]:
    """CLIENT PAUSE on the real server: every other client's commands hang meanwhile."""
    # Redis 7.0 holds even CLIENT UNPAUSE until the pause ends; redis-py 8 would give up on
    # it after its default 5 s socket timeout.
    admin = redis.asyncio.Redis.from_url(url, socket_timeout=milliseconds / 1000 + 30)
    try:
        await admin.client_pause(milliseconds, all=True)
        yield
    finally:
        await admin.client_unpause()
        await admin.aclose()


def breaker_states(status: dict[str, Any]) -> dict[str, str | None]:
    """Each dependency's breaker state in a status query's data."""
    return {
        dependency["name"]: (dependency["breaker"] or {}).get("state")
        for dependency in status["dependencies"]
    }
