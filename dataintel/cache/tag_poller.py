"""Without Redis: a task that polls the store's tag versions and drops what they invalidate.

This bounds how long a server serves values a command (`dataintel features materialize`,
`dataintel cache invalidate`) has replaced: one poll interval plus one query.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.cache.store_tags import bumped_since, latest_serial
from dataintel.cache.two_level import TwoLevelCache
from dataintel.observability.logging import get_logger
from dataintel.store.diagnosis import STORE_FAILURES

_log = get_logger("dataintel.cache")


class TagPoller:
    """Polls ``cache_tag_versions`` every ``interval_seconds`` while started."""

    def __init__(self, engine: AsyncEngine, cache: TwoLevelCache, interval_seconds: float) -> None:
        self._engine = engine
        self._cache = cache
        self._interval = interval_seconds
        self._seen: int | None = None
        self._failing = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts polling in the background."""
        self._task = asyncio.create_task(self._run(), name="cache-tag-poller")

    async def aclose(self) -> None:
        """Stops polling, letting a poll in flight finish (the store's timeouts bound it)."""
        # Cancelling a query mid-flight would leave aiosqlite's thread answering a loop
        # that may be closed by then.
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def poll(self) -> list[str]:
        """One poll: drops the entries of tags bumped since the last one and returns the tags."""
        if self._seen is None:
            # Whatever was bumped before this process started, its cache never held.
            self._seen = await latest_serial(self._engine)
            return []
        self._seen, tags = await bumped_since(self._engine, self._seen)
        if tags:
            await self._cache.invalidate(tags)
        return tags

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll()
                if self._failing:
                    _log.info("cache tag polling resumed")
                self._failing = False
            except Exception as error:
                # Logged once per outage, not once a second; polling goes on either way, or
                # this process would silently serve its cache until the TTL again.
                if not self._failing:
                    level = _log.warning if isinstance(error, STORE_FAILURES) else _log.error
                    level("cache tag polling failed", error=" ".join(str(error).split()))
                self._failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
