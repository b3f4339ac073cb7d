"""The per-client request limit counted in process and reconciled with the session's real
Redis in batches: no round trip per request, and an overshoot bounded as docs/security.md says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from dataintel.gateway.client_request_limiter import ClientRequestLimiter

pytestmark = pytest.mark.redis


class Clock:
    """A fixed instant in the middle of a window, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000 * 60 + 1.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def limiter(
    redis: Redis | None, prefix: str, clock: Clock, *, limit: int, share: float
) -> ClientRequestLimiter:
    return ClientRequestLimiter(
        limit, 60, redis=redis, guard=None, key_prefix=prefix, local_share=share, clock=clock
    )


async def test_replicas_overshoot_by_at_most_their_batches(redis: Redis) -> None:
    clock = Clock()
    limit, share, replicas = 100, 0.1, 3
    made = [limiter(redis, "overshoot", clock, limit=limit, share=share) for _ in range(replicas)]
    batch = made[0].batch
    assert batch == 10
    admitted = 0
    for _ in range(400):
        for one in made:
            admitted += (await one.hit("10.0.0.1")).allowed
    assert limit <= admitted <= limit + replicas * (batch - 1)
    # One round trip per batch, not one per request.
    exchanges = sum(one.exchanges for one in made)
    assert exchanges <= admitted // (batch - 1) + replicas
    for one in made:
        await one.exchange()
    # Once every replica has told Redis, the shared count holds every admitted request.
    assert (
        int(await redis.get(f"overshoot:ratelimit:clients:{1_000_000}:10.0.0.1") or 0) == admitted
    )


async def test_with_no_local_share_every_request_asks_redis_and_the_limit_is_exact(
    redis: Redis,
) -> None:
    clock = Clock()
    made = [limiter(redis, "exact", clock, limit=7, share=0.0) for _ in range(3)]
    verdicts = [await made[i % 3].hit("10.0.0.2") for i in range(30)]
    assert sum(v.allowed for v in verdicts) == 7
    assert [v.allowed for v in verdicts[:7]] == [True] * 7
    assert verdicts[6].remaining == 0
    refused = verdicts[7]
    assert not refused.allowed
    assert refused.remaining == 0
    assert 1 <= refused.reset_seconds <= 60


async def test_the_previous_window_still_weighs(redis: Redis) -> None:
    clock = Clock()
    one = limiter(redis, "sliding", clock, limit=10, share=0.0)
    assert sum([(await one.hit("10.0.0.3")).allowed for _ in range(10)]) == 10
    # A quarter into the next window, three quarters of the previous count still weigh.
    clock.now += 60 - 1 + 15
    allowed = sum([(await one.hit("10.0.0.3")).allowed for _ in range(10)])
    assert allowed == 10 - 8  # 10 * 0.75 = 7.5 of the previous window: room for 2


async def test_without_redis_one_replica_counts_alone() -> None:
    clock = Clock()
    one = limiter(None, "alone", clock, limit=5, share=0.5)
    assert [(await one.hit("10.0.0.4")).allowed for _ in range(7)] == [True] * 5 + [False] * 2
    assert (await one.hit("10.0.0.5")).allowed, "another client has its own count"
    assert one.exchanges == 0


async def test_hit_now_decides_every_hit_but_the_one_redis_decides(redis: Redis) -> None:
    """The GET path asks ``hit_now`` first: the same verdicts as ``hit`` for the hits this
    replica decides alone; None, counting nothing, for the hit that fills a batch."""
    clock = Clock()
    by_now = limiter(redis, "hit-now", clock, limit=100, share=0.1)
    by_hit = limiter(redis, "hit-awaited", clock, limit=100, share=0.1)
    for _ in range(by_now.batch - 1):
        assert by_now.hit_now("10.0.0.2") == await by_hit.hit("10.0.0.2")
    assert by_now.hit_now("10.0.0.2") is None
    assert by_now.hit_now("10.0.0.2") is None
    assert by_now.exchanges == 0
    assert await by_now.hit("10.0.0.2") == await by_hit.hit("10.0.0.2")
    assert by_now.exchanges == by_hit.exchanges == 1
    assert by_now.hit_now("10.0.0.2") == await by_hit.hit("10.0.0.2")
    alone = limiter(None, "alone", clock, limit=2, share=0.5)
    verdicts = [alone.hit_now("a") for _ in range(3)]
    assert [v.allowed if v is not None else None for v in verdicts] == [True, True, False]
