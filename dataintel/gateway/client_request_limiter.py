"""The per-client request limit, counted in process and added to Redis's count in batches.

A sliding window counter per client address: the current window's count plus the previous
window's, weighted by how much of it still overlaps the last ``window`` seconds. Each replica
admits a request on its own view (Redis's counts at its last exchange plus the hits it has
admitted since) while that view leaves room and it holds fewer than ``batch`` hits Redis has
not seen; the hit that would fill the batch asks Redis, which adds the batch and decides
atomically. Every ``sync_seconds`` one pipeline adds every client's pending hits and brings
back the shared counts. So a request costs no round trip, a client costs one every ``batch``
requests, and a client may overshoot the limit by at most ``batch - 1`` requests per replica
(docs/security.md). A view can only be behind Redis, never ahead: refusing on it is exact.

While Redis is unusable each replica counts alone, from zero, as it did without Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from dataintel.errors import GatewayError
from dataintel.gateway.rate_verdict import Verdict
from dataintel.observability.logging import get_logger
from dataintel.resilience import Dependency

_log = get_logger("dataintel.rate_limit")

# Adds a replica's pending hits to the window's count and, when asked, one more if it fits.
_EXCHANGE = """
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local admitted = 0
if ARGV[2] == '1' and previous * tonumber(ARGV[3]) + current + 1 <= tonumber(ARGV[4]) then
  current = redis.call('INCR', KEYS[1])
  admitted = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {current, previous, admitted}
"""


@dataclass(slots=True)
class _Count:
    """One client's counts in one window, as this replica sees them."""

    window: int
    current: int = 0
    """The window's count: Redis's at the last exchange (alone: this replica's)."""
    previous: int = 0
    """The previous window's count, Redis's at the last exchange."""
    pending: int = 0
    """Hits admitted here that Redis has not been told of."""


class ClientRequestLimiter:
    """At most ``limit`` requests per client address per sliding ``window_seconds``."""

    def __init__(
        self,
        limit: int,
        window_seconds: int,
        *,
        redis: Redis | None,
        guard: Dependency | None,
        key_prefix: str = "dataintel",
        sync_seconds: float = 0.1,
        local_share: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._redis = redis
        self._guard = guard
        self._prefix = f"{key_prefix}:ratelimit:clients"
        self._sync = sync_seconds
        self.batch = max(1, min(limit, math.floor(limit * local_share)))
        """Hits a replica may admit before Redis hears of them, plus one."""
        self._clock = clock
        self._counts: dict[str, _Count] = {}
        self._ended: list[tuple[str, _Count]] = []
        self._alone: dict[str, _Count] = {}
        self.outage = False
        self.exchanges = 0
        """Round trips to Redis so far: the benchmark and tests read it."""
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the periodic exchange with Redis (and the pruning of old counts)."""
        self._task = asyncio.create_task(self._run(), name="client-request-counts")

    async def aclose(self) -> None:
        """Stops the exchanges after telling Redis what is still pending."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def hit(self, client: str) -> Verdict:
        """Counts one request of ``client`` and says whether it fits."""
        now = self._clock()
        verdict = self._hit_here(client, now)
        if verdict is not None:
            return verdict
        window, into = divmod(now, self.window_seconds)
        weight = 1.0 - into / self.window_seconds
        reset = max(1, math.ceil(self.window_seconds - into))
        count = self._count(self._counts, client, int(window))
        try:
            admitted = await self._decide(client, count, weight)
        except (GatewayError, OSError, TimeoutError) as error:
            self._lost(error)
            return self._hit_alone(self._alone, client, now)
        remaining = max(0, math.floor(self.limit - count.previous * weight - count.current))
        return Verdict(admitted, self.limit, remaining, reset)

    def hit_now(self, client: str) -> Verdict | None:
        """``hit``'s verdict when this replica decides alone (every hit but the one that
        fills a batch), without a coroutine; None when ``hit`` must be awaited (Redis
        decides), and then nothing was counted."""
        return self._hit_here(client, self._clock())

    def allowed_now(self, client: str) -> tuple[int, int] | Verdict | None:
        """``hit_now``, with a hit admitted on this replica's view of Redis's counts given
        as its verdict's ``remaining`` and ``reset_seconds`` alone: no ``Verdict`` made
        for the request counted most often."""
        return self._counted_here(client, self._clock())

    def _hit_here(self, client: str, now: float) -> Verdict | None:
        decided = self._counted_here(client, now)
        if type(decided) is tuple:
            return Verdict(True, self.limit, decided[0], decided[1])
        assert not isinstance(decided, tuple)
        return decided

    def _counted_here(self, client: str, now: float) -> tuple[int, int] | Verdict | None:
        window, into = divmod(now, self.window_seconds)
        weight = 1.0 - into / self.window_seconds
        reset = max(1, math.ceil(self.window_seconds - into))
        if self._redis is None or self.outage:
            return self._hit_alone(self._alone if self._redis else self._counts, client, now)
        count = self._counts.get(client)
        if count is None or count.window != window:
            count = self._count(self._counts, client, int(window))
        seen = count.previous * weight + count.current + count.pending
        if seen + 1 > self.limit:
            # Redis's count can only be higher than what this replica last saw.
            return Verdict(False, self.limit, 0, reset)
        if count.pending + 1 < self.batch:
            count.pending += 1
            return math.floor(self.limit - seen - 1), reset
        return None

    def _hit_alone(self, counts: dict[str, _Count], client: str, now: float) -> Verdict:
        window, into = divmod(now, self.window_seconds)
        weight = 1.0 - into / self.window_seconds
        reset = max(1, math.ceil(self.window_seconds - into))
        count = self._count(counts, client, int(window))
        seen = count.previous * weight + count.current
        if seen + 1 > self.limit:
            return Verdict(False, self.limit, 0, reset)
        count.current += 1
        return Verdict(True, self.limit, math.floor(self.limit - seen - 1), reset)

    def _count(self, counts: dict[str, _Count], client: str, window: int) -> _Count:
        count = counts.get(client)
        if count is None or count.window != window:
            previous = 0
            if count is not None:
                if count.window == window - 1:
                    previous = count.current + count.pending
                if count.pending and counts is self._counts:
                    self._ended.append((client, count))
            count = counts[client] = _Count(window, previous=previous)
        return count

    def _key(self, window: int, client: str) -> str:
        return f"{self._prefix}:{window}:{client}"

    def _arguments(self, client: str, count: _Count, decide: bool, weight: float) -> list[Any]:
        lifetime = 2 * self.window_seconds * 1000
        return [
            _EXCHANGE,
            2,
            self._key(count.window, client),
            self._key(count.window - 1, client),
            count.pending,
            "1" if decide else "0",
            repr(weight),
            self.limit,
            lifetime,
        ]

    async def _decide(self, client: str, count: _Count, weight: float) -> bool:
        """Adds the pending hits and this one if it fits, in one round trip."""
        redis = self._redis
        assert redis is not None
        sent = count.pending
        arguments = self._arguments(client, count, True, weight)

        async def run() -> Any:
            return await redis.eval(*arguments)

        current, previous, admitted = await self._call(run)
        count.pending -= sent
        count.current, count.previous = int(current), int(previous)
        return bool(admitted)

    async def _call(self, operation: Callable[[], Any]) -> Any:
        self.exchanges += 1
        try:
            if self._guard is not None:
                return await self._guard.call(operation)
            return await operation()
        except RedisError as error:
            # An unusable Redis, as far as counting goes.
            raise OSError(str(error)) from error

    async def exchange(self) -> None:
        """Adds every pending hit to Redis's counts and brings back the shared counts."""
        redis = self._redis
        if redis is None:
            return
        now = self._clock()
        window, into = divmod(now, self.window_seconds)
        weight = 1.0 - into / self.window_seconds
        ended, self._ended = self._ended, []
        batch = [*ended, *((c, n) for c, n in self._counts.items() if n.pending)]
        if self.outage and not batch:
            await self._call(redis.ping)
        if batch:
            sent = [count.pending for _, count in batch]

            async def run() -> Any:
                pipeline = redis.pipeline(transaction=False)
                for client, count in batch:
                    pipeline.eval(*self._arguments(client, count, False, weight))
                return await pipeline.execute()

            try:
                results = await self._call(run)
            except BaseException:
                # Nothing was counted for sure: the hits stay pending for the next exchange.
                self._ended = ended + self._ended
                raise
            for (_, count), added, (current, previous, _) in zip(batch, sent, results, strict=True):
                count.pending -= added
                count.current, count.previous = int(current), int(previous)
        if self.outage:
            self.outage = False
            self._alone.clear()
            # Redis may have lost its counts meanwhile (a restart): views of it start over.
            for client in [c for c, n in self._counts.items() if not n.pending]:
                del self._counts[client]
            _log.info("per-client request counts kept in Redis again")
        self._prune(int(window))

    def _prune(self, window: int) -> None:
        for counts in (self._counts, self._alone):
            gone = [c for c, n in counts.items() if n.window < window - 1 and not n.pending]
            for client in gone:
                del counts[client]

    def _lost(self, error: BaseException) -> None:
        if not self.outage:
            self.outage = True
            _log.warning(
                "per-client request counts kept in process while Redis is unusable",
                error=type(error).__name__,
            )

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._sync)
            try:
                if self._redis is None:
                    self._prune(int(self._clock() // self.window_seconds))
                else:
                    await self.exchange()
            except (GatewayError, OSError, TimeoutError) as error:
                self._lost(error)
