"""Rate-limit counts shared by every replica through Redis, with an in-process fallback.

The @rateLimit fields use the ``limits`` library's moving window (exact, for small limits
such as logins), one Redis call per hit. The per-client HTTP limit is a sliding window
counter kept in process and added to Redis's in batches (client_request_limiter.py): it
protects capacity, and must not cost a round trip per request. Redis calls go through the Redis
dependency's breaker and time budget, so a down Redis costs one fast failure, not a stall.
While Redis is unusable, counts are kept in this process (fail open: each replica counts on
its own) or the limited work is refused (fail closed), as ``rate_limit_fail_open`` says.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from redis.asyncio import Redis
from redis.exceptions import RedisError

from dataintel.errors import GatewayError
from dataintel.gateway.client_request_limiter import ClientRequestLimiter
from dataintel.observability.logging import get_logger
from dataintel.resilience import Dependency
from dataintel.settings import RateLimitSettings, RedisSettings

_log = get_logger("dataintel.rate_limit")


def limit_item(limit: int, window_seconds: int) -> RateLimitItem:
    """``limit`` hits per ``window_seconds`` seconds."""
    return RateLimitItemPerSecond(limit, window_seconds)


class CountStore:
    """Where counts live: Redis when configured and answering, else this process."""

    def __init__(
        self,
        redis_storage: RedisStorage | None,
        guard: Dependency | None,
        *,
        fail_open: bool,
    ) -> None:
        self._redis_storage = redis_storage
        self._guard = guard
        self.fail_open = fail_open
        self._memory = MemoryStorage()
        self._in_outage = False

    @classmethod
    def from_settings(
        cls,
        rate_limit: RateLimitSettings,
        redis_settings: RedisSettings,
        redis: Redis | None,
        guard: Dependency | None,
    ) -> CountStore:
        """Counts in the app's Redis when it has one, through the app's connection pool."""
        storage = None
        if redis is not None and redis_settings.url is not None:
            # The app's pool carries its timeouts and retry policy, set to fail fast.
            options: dict[str, Any] = {"connection_pool": redis.connection_pool}
            storage = RedisStorage(
                "async+" + redis_settings.url,
                implementation="redispy",
                key_prefix=f"{redis_settings.key_prefix}:ratelimit",
                **options,
            )
        return cls(storage, guard, fail_open=rate_limit.fail_open)

    def limiter(self, *, exact: bool, fail_open: bool | None = None) -> Limiter:
        """A limiter over this store: a moving window when exact, else a sliding counter."""
        strategy: type[RateLimiter] = (
            MovingWindowRateLimiter if exact else SlidingWindowCounterRateLimiter
        )
        shared = strategy(self._redis_storage) if self._redis_storage is not None else None
        fails_open = self.fail_open if fail_open is None else fail_open
        return Limiter(self, self._guard, shared, strategy(self._memory), fail_open=fails_open)

    def redis_failed(self, error: BaseException, *, fail_open: bool) -> None:
        """Logs the first failure of an outage only."""
        if not self._in_outage:
            self._in_outage = True
            _log.warning(
                "rate limits counted in process while Redis is unusable"
                if fail_open
                else "rate-limited fields refused while Redis is unusable",
                error=type(error).__name__,
            )

    def redis_answered(self) -> None:
        """Logs the end of an outage."""
        if self._in_outage:
            self._in_outage = False
            _log.info("rate limits counted in Redis again")

    async def aclose(self) -> None:
        """Stops the in-process store's expiry task; the Redis pool is the app's to close."""
        await self._memory.reset()


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether one hit of a field's limit fits, and when to retry when it does not."""

    allowed: bool
    retry_after_seconds: int = 0
    """Whole seconds until a hit would fit again (at least 1 when refused)."""
    unavailable: bool = False
    """Refused because Redis is down and the limiter fails closed."""


ADMITTED = Admission(True)


class Limiter:
    """One algorithm over a CountStore: hits counted in Redis, or in process while it is down."""

    def __init__(
        self,
        store: CountStore,
        guard: Dependency | None,
        shared: RateLimiter | None,
        local: RateLimiter,
        *,
        fail_open: bool,
    ) -> None:
        self._store = store
        self._guard = guard
        self._shared = shared
        self._local = local
        self._fail_open = fail_open

    async def hit(self, item: RateLimitItem, *identifiers: str) -> Admission:
        """Counts one hit against ``item`` for these identifiers and says whether it fits:
        one Redis call when it does, a second for the retry-after when it does not."""
        if self._shared is not None:
            try:
                verdict = await self._hit_shared(self._shared, item, identifiers)
            except (GatewayError, RedisError, OSError, TimeoutError) as error:
                self._store.redis_failed(error, fail_open=self._fail_open)
                if not self._fail_open:
                    return Admission(False, 1, unavailable=True)
            else:
                self._store.redis_answered()
                return verdict
        return await _hit(self._local, item, identifiers)

    async def _hit_shared(
        self, limiter: RateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]
    ) -> Admission:
        if self._guard is None:
            return await _hit(limiter, item, identifiers)
        async with self._guard.section():
            return await _hit(limiter, item, identifiers)


async def _hit(
    limiter: RateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]
) -> Admission:
    if await limiter.hit(item, *identifiers):
        # Admitted: nothing more to say, so no second round trip for the window's stats.
        return ADMITTED
    stats = await limiter.get_window_stats(item, *identifiers)
    # A client told to retry in 0 seconds would retry in a tight loop.
    return Admission(False, max(1, math.ceil(stats.reset_time - time.time())))


class RateLimits:
    """The app's two limiters: in process until the lifespan connects them to Redis."""

    def __init__(self, rate_limit: RateLimitSettings, redis: RedisSettings) -> None:
        self._rate_limit = rate_limit
        self._redis = redis
        self._use(CountStore(None, None, fail_open=rate_limit.fail_open), None, None)

    def _use(self, store: CountStore, redis: Redis | None, guard: Dependency | None) -> None:
        rate_limit = self._rate_limit
        self.store = store
        self.fields = store.limiter(exact=True)
        """Counts @rateLimit fields: a moving window, failing open or closed per the settings."""
        # The per-client limit protects capacity, which a per-replica count protects too.
        self.clients = ClientRequestLimiter(
            rate_limit.requests,
            rate_limit.window_seconds,
            redis=redis if self._redis.url is not None else None,
            guard=guard,
            key_prefix=self._redis.key_prefix,
            sync_seconds=rate_limit.sync_seconds,
            local_share=rate_limit.local_share,
        )
        """Counts requests per client address: a sliding window counter, batched to Redis."""

    def connect(self, redis: Redis | None, guard: Dependency | None) -> None:
        """Counts in Redis from now on, when the app has one."""
        self._use(
            CountStore.from_settings(self._rate_limit, self._redis, redis, guard), redis, guard
        )
        if self._rate_limit.limits_clients:
            self.clients.start()

    async def aclose(self) -> None:
        """Tells Redis the last per-client counts and releases the in-process store."""
        await self.clients.aclose()
        await self.store.aclose()
