"""Tag bumps from every replica, received over Redis pub/sub and applied to this process's level.

While subscribed, the in-process level is trusted: a hit there costs no network call, and a
bump made anywhere reaches it as one pub/sub message. A replica cannot know what it missed
while the subscription was down, so losing it makes the cache revalidate every in-process
entry against Redis, and subscribing again (at start, after a reconnect) drops them all.
A connection that dies without a reset is noticed by a PING unanswered within one heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from dataintel.cache.shared import is_redis_failure
from dataintel.cache.two_level import TwoLevelCache
from dataintel.observability.logging import get_logger

_log = get_logger("dataintel.cache")
LAG_SAMPLES = 1000
"""Delays from bump to local drop kept for tests and the benchmark."""


class InvalidationFeed:
    """Keeps ``cache``'s in-process level in step with the bumps published through Redis."""

    def __init__(
        self,
        redis: Redis,
        cache: TwoLevelCache,
        *,
        heartbeat_seconds: float,
        retry_seconds: float = 0.5,
    ) -> None:
        self._redis = redis
        self._cache = cache
        assert cache.shared is not None, "the feed listens for bumps of a Redis-backed cache"
        self._channel = cache.shared.channel
        self._heartbeat = heartbeat_seconds
        self._retry = retry_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        """Invalidation messages applied so far."""
        self.subscriptions = 0
        """Times the feed (re)subscribed, each dropping the whole in-process level."""
        self.lags: deque[float] = deque(maxlen=LAG_SAMPLES)
        """Seconds from a bump to its local drop, the most recent ones."""
        self._changed = asyncio.Condition()

    @property
    def subscribed(self) -> bool:
        """Whether the in-process level is trusted now."""
        return self._cache.memory_trusted

    def start(self) -> None:
        """Subscribes in the background; the level is revalidated until the first subscribe."""
        self._cache.distrust_memory()
        self._task = asyncio.create_task(self._run(), name="cache-invalidation-feed")

    async def aclose(self) -> None:
        """Stops listening; the level goes back to revalidating its entries."""
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._cache.distrust_memory()

    async def wait_for(self, *, received: int = 0, subscriptions: int = 0) -> None:
        """Waits until at least so many messages were applied and subscriptions made."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.received >= received and self.subscriptions >= subscriptions
            )

    async def _run(self) -> None:
        lost_logged = False
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub()
            subscriptions = self.subscriptions
            try:
                await self._listen(pubsub)
            except Exception as error:
                if not is_redis_failure(error) and not isinstance(error, ConnectionError):
                    _log.error("cache invalidation feed failed", error=repr(error))
                elif not lost_logged or self.subscriptions > subscriptions:
                    _log.warning(
                        "cache invalidation feed lost; in-process entries revalidated",
                        error=type(error).__name__,
                    )
                lost_logged = True
            finally:
                self._cache.distrust_memory()
                # Bounded: closing a connection whose read was just cancelled can wait on a
                # peer that never answers, and shutdown awaits this task.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pubsub.aclose(), self._heartbeat)  # type: ignore[no-untyped-call]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._retry)

    async def _listen(self, pubsub: PubSub) -> None:
        await pubsub.subscribe(self._channel)
        confirmed = await pubsub.get_message(timeout=self._heartbeat)
        if confirmed is None or confirmed.get("type") != "subscribe":
            raise ConnectionError("no subscribe confirmation")
        # Whatever was bumped while this process was not listening, it cannot know: it starts
        # its in-process level over.
        self._cache.trust_memory()
        self.subscriptions += 1
        await self._notify()
        _log.info("cache invalidation feed subscribed", channel=self._channel)
        awaiting_pong = False
        while True:
            message = await pubsub.get_message(timeout=self._heartbeat)
            if message is None:
                if awaiting_pong:
                    raise ConnectionError("no answer to PING within the heartbeat")
                await pubsub.ping()
                awaiting_pong = True
                continue
            kind = message.get("type")
            if kind == "pong":
                awaiting_pong = False
            elif kind == "message":
                self._apply(message)
                await self._notify()

    def _apply(self, message: dict[str, Any]) -> None:
        try:
            body = orjson.loads(message["data"])
            tags = [str(tag) for tag in body["tags"]]
            at = float(body.get("at", 0.0))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            # Whatever it was, something was bumped: dropping everything is always safe.
            _log.warning("unreadable invalidation message; in-process level dropped")
            tags, at = [], 0.0
            self._cache.trust_memory()
        else:
            self._cache.drop_local(tags)
        self.received += 1
        if at:
            self.lags.append(max(0.0, time.time() - at))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
