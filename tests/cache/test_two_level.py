"""The two-level cache over the session's real redis-server, which tests stop and restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import pytest
from redis.asyncio import Redis

from dataintel.cache import (
    Fetched,
    JsonCodec,
    MemoryCache,
    PartialResult,
    Region,
    SharedCache,
    TwoLevelCache,
    note_tags,
    observe,
    same_key,
    trace_request,
)
from dataintel.cache.memory import Entry
from dataintel.cache.redis_connection import create_redis
from dataintel.cache.shared import is_redis_failure
from dataintel.errors import DependencyTimeoutError, DependencyUnavailableError
from dataintel.resilience import Dependency, DependencyPolicy
from dataintel.settings import Settings
from tests.plugins.faults import eventually
from tests.plugins.redis_server import RedisServer

pytestmark = pytest.mark.redis


def region(ttl: float = 60.0, stale: float = 3600.0) -> Region[int, object]:
    return Region(
        "test.item",
        JsonCodec(),
        key=str,
        tags=lambda item: (f"item:{item}", "dataset:items"),
        ttl_seconds=ttl,
        stale_seconds=stale,
    )


class Source:
    """A dependency that answers ``value-<key>`` and counts what it was asked."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.version = 1
        self.failure: Exception | None = None

    async def load(self, keys: Sequence[int]) -> Mapping[int, object]:
        self.calls.append(list(keys))
        if self.failure is not None:
            raise self.failure
        return {key: f"value-{key}-v{self.version}" for key in keys if key > 0}


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[list[Redis]]:
    made: list[Redis] = []
    yield made
    for client in made:
        await client.aclose()


class MakeCache(Protocol):
    def __call__(self, *, redis: bool = True, reset: float = 0.2) -> TwoLevelCache: ...


@pytest.fixture
def make_cache(redis_url: str, clients: list[Redis]) -> MakeCache:
    """A cache with its own memory level, sharing the test's Redis (one per replica)."""

    def make(*, redis: bool = True, reset: float = 0.2) -> TwoLevelCache:
        shared = None
        if redis:
            client = create_redis(
                Settings(redis_url=redis_url, redis_call_timeout_seconds=0.25).redis
            )
            assert client is not None
            clients.append(client)
            dependency = Dependency(
                "redis", "redis", DependencyPolicy(0.5, 2, reset), is_redis_failure
            )
            shared = SharedCache(client, dependency, "test")
        return TwoLevelCache(MemoryCache(1000, 10_000_000), shared)

    return make


async def values(cache: TwoLevelCache, keys: Sequence[int], source: Source) -> dict[int, object]:
    fetched = await cache.fetch_many(region(), keys, source.load)
    return fetched.settle(lambda key: key)


async def test_second_read_is_a_memory_hit(make_cache: MakeCache) -> None:
    cache = make_cache()
    source = Source()
    assert await values(cache, [1, 2, -1], source) == {1: "value-1-v1", 2: "value-2-v1"}
    assert await values(cache, [2, 1, -1], source) == {1: "value-1-v1", 2: "value-2-v1"}
    # The absent key is asked again: nothing is cached for what does not exist.
    assert source.calls == [[1, 2, -1], [-1]]
    assert cache.stats.memory_hits == 2


async def test_replicas_share_entries_through_redis(make_cache: MakeCache) -> None:
    first = make_cache()
    second = make_cache()
    source = Source()
    await values(first, [1, 2], source)
    await first.settle_loads()
    assert await values(second, [1, 2], source) == {1: "value-1-v1", 2: "value-2-v1"}
    assert source.calls == [[1, 2]]
    assert second.stats.shared_hits == 2


async def test_invalidation_reaches_every_replica(make_cache: MakeCache) -> None:
    first = make_cache()
    second = make_cache()
    source = Source()
    await values(first, [1, 2], source)
    await first.settle_loads()
    await values(second, [1, 2], source)
    source.version = 2
    assert await second.invalidate(["item:1"])
    # The first replica still holds item 1 in memory; its tag's version says it is gone.
    assert await values(first, [1, 2], source) == {1: "value-1-v2", 2: "value-2-v1"}
    await first.settle_loads()
    # The second replica takes the reloaded entry from Redis: one load for both.
    assert await values(second, [1, 2], source) == {1: "value-1-v2", 2: "value-2-v1"}
    assert source.calls == [[1, 2], [1]]
    assert await first.invalidate(["dataset:items"])
    source.version = 3
    assert await values(second, [1, 2], source) == {1: "value-1-v3", 2: "value-2-v3"}


async def test_concurrent_misses_load_once(make_cache: MakeCache) -> None:
    # In memory only, every reader reaches its load in the order it started.
    cache = make_cache(redis=False)
    release = asyncio.Event()
    both_loading = asyncio.Event()
    calls: list[Sequence[int]] = []

    async def slow(keys: Sequence[int]) -> Mapping[int, object]:
        calls.append(keys)
        if len(calls) == 2:
            both_loading.set()
        await release.wait()
        return {key: key * 10 for key in keys}

    readers = [
        asyncio.create_task(cache.fetch_many(region(), keys, slow))
        for keys in ([1], [1, 2], [2, 1], [1])
    ]
    await both_loading.wait()
    release.set()
    results = [fetched.values for fetched in await asyncio.gather(*readers)]
    assert results == [{1: 10}, {1: 10, 2: 20}, {2: 20, 1: 10}, {1: 10}]
    assert sorted(key for batch in calls for key in batch) == [1, 2], "each key loaded once"


async def test_a_cancelled_reader_does_not_cancel_the_shared_load(make_cache: MakeCache) -> None:
    cache = make_cache(redis=False)
    release = asyncio.Event()

    async def slow(keys: Sequence[int]) -> Mapping[int, object]:
        await release.wait()
        return dict.fromkeys(keys, "done")

    leader = asyncio.create_task(cache.fetch_many(region(), [7], slow))
    follower = asyncio.create_task(cache.fetch_many(region(), [7], slow))
    await eventually(lambda: _true(cache.stats.misses == 2))
    leader.cancel()
    release.set()
    assert (await follower).values == {7: "done"}
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_stale_entry_stands_in_for_a_failed_load(make_cache: MakeCache) -> None:
    cache = make_cache()
    source = Source()
    expired = region(ttl=0.0)
    await cache.fetch_many(expired, [1], source.load)
    source.failure = DependencyUnavailableError("down", details={"dependency": "store"})
    with trace_request() as trace, observe() as seen:
        fetched = await cache.fetch_many(expired, [1, 2], source.load)
        with pytest.raises(PartialResult) as raised:
            fetched.settle(lambda key: key)
    assert fetched.values == {1: "value-1-v1"}
    assert fetched.stale[1].code == "DEPENDENCY_UNAVAILABLE"
    assert fetched.stale[1].dependency == "store"
    assert fetched.stale[1].age_seconds >= 0
    assert isinstance(fetched.failed[2], DependencyUnavailableError)
    assert raised.value.found == {1: "value-1-v1"}
    assert list(raised.value.failed) == [2]
    assert seen.by_key[1].code == "DEPENDENCY_UNAVAILABLE"
    assert trace.stale


async def test_a_timeout_is_stood_in_for_too(make_cache: MakeCache) -> None:
    cache = make_cache(redis=False)
    source = Source()
    expired = region(ttl=0.0)

    async def one() -> object:
        return (await source.load([1]))[1]

    await cache.fetch(expired, 1, one)
    source.failure = DependencyTimeoutError("slow", details={"dependency": "store"})
    with observe() as seen:
        assert await cache.fetch(expired, 1, one) == "value-1-v1"
    assert seen.oldest is not None
    assert seen.oldest.code == "TIMEOUT"


async def test_nothing_stands_in_past_the_stale_window_or_after_invalidation(
    make_cache: MakeCache,
) -> None:
    cache = make_cache()
    source = Source()
    gone = region(ttl=0.0, stale=0.0)
    await cache.fetch_many(gone, [1], source.load)
    source.failure = DependencyUnavailableError("down")
    assert list((await cache.fetch_many(gone, [1], source.load)).failed) == [1]
    expired = region(ttl=0.0)
    source.failure = None
    await cache.fetch_many(expired, [1], source.load)
    await cache.invalidate(["item:1"])
    source.failure = DependencyUnavailableError("down")
    assert list((await cache.fetch_many(expired, [1], source.load)).failed) == [1]


async def test_errors_that_are_not_outages_are_not_stood_in_for(make_cache: MakeCache) -> None:
    cache = make_cache()
    source = Source()
    await cache.fetch_many(region(ttl=0.0), [1], source.load)
    source.failure = KeyError("bug")
    assert isinstance(
        (await cache.fetch_many(region(ttl=0.0), [1], source.load)).failed[1], KeyError
    )


async def test_redis_down_and_back(make_cache: MakeCache, redis_server: RedisServer) -> None:
    cache = make_cache(reset=0.05)
    source = Source()
    await values(cache, [1], source)
    await cache.settle_loads()
    redis_server.stop()
    try:
        # Without the invalidation feed nor Redis, nothing held can be checked: every key
        # is loaded again, and nothing fails.
        assert await values(cache, [1, 2], source) == {1: "value-1-v1", 2: "value-2-v1"}
        assert await values(cache, [2], source) == {2: "value-2-v1"}
        assert source.calls == [[1], [1, 2], [2]]
        assert cache.shared is not None
        assert cache.shared.dependency.state == "open"
    finally:
        redis_server.start()
    source.version = 2

    async def answered_again() -> bool:
        assert cache.shared is not None
        found = await values(cache, [1, 2], source) == {1: "value-1-v2", 2: "value-2-v2"}
        return found and cache.shared.dependency.snapshot().state == "closed"

    await eventually(answered_again)


async def test_without_redis_invalidation_is_local(make_cache: MakeCache) -> None:
    cache = make_cache(redis=False)
    source = Source()
    await values(cache, [1], source)
    source.version = 2
    assert await cache.invalidate(["item:1"])
    assert await values(cache, [1], source) == {1: "value-1-v2"}


async def test_a_load_that_raced_an_invalidation_is_not_kept(make_cache: MakeCache) -> None:
    cache = make_cache(redis=False)
    source = Source()

    async def racing(keys: Sequence[int]) -> Mapping[int, object]:
        found = await source.load(keys)
        await cache.invalidate(["item:1"])
        return found

    await cache.fetch_many(region(), [1], racing)
    await values(cache, [1], source)
    assert len(source.calls) == 2


async def test_put_and_get_by_the_tags_read(make_cache: MakeCache) -> None:
    first = make_cache()
    second = make_cache()
    source = Source()
    responses: Region[str, object] = Region("test.response", JsonCodec(), str, lambda _: (), 0, 0)
    generation = first.generation
    with trace_request() as trace:
        await values(first, [1], source)
    await first.put(responses, "r1", {"item": "value-1-v1"}, trace.versions, 30, generation)
    await first.settle_loads()
    assert await second.get(responses, "r1") is not None
    found = await first.get(responses, "r1")
    assert found is not None
    assert found[0] == {"item": "value-1-v1"}
    await second.invalidate(["item:1"])
    assert await first.get(responses, "r1") is None
    assert await second.get(responses, "r1") is None


async def _true(value: bool) -> bool:
    return value


def test_a_tag_noted_without_a_version_after_one_with_it_is_inconsistent() -> None:
    with trace_request() as trace:
        trace.note_entries([_Tagged(("a", "b"), None)])
        assert trace.versions == {"a": None, "b": None}
        assert trace.consistent
        note_tags(["c"], {"c": "7"})
        trace.note_entries([_Tagged(("a",), None)])
        assert trace.consistent
        trace.note_entries([_Tagged(("c",), None)])
        assert not trace.consistent


def test_entries_noted_are_gone_through_when_read_with_the_same_outcome() -> None:
    # note_entries keeps the entries and goes through their tags only when the versions or
    # the consistency are read: read once at the end, they are what reading after each
    # note gives (the test above), in the order the notes were made.
    with trace_request() as trace:
        trace.note_entries([_Tagged(("a", "b"), None)])
        trace.note_entries(iter([_Tagged(("b", "d"), None)]))
        note_tags(["c"], {"c": "7"})
        trace.note_entries([_Tagged(("a",), None)])
        trace.note_entries([_Tagged(("e",), ("3",))])
        assert trace.consistent
        trace.note_entries([_Tagged(("c",), None)])
        trace.note_entries([_Tagged(("e",), ("4",))])
        assert trace.versions == {"a": None, "b": None, "d": None, "c": "7", "e": "3"}
        assert not trace.consistent


def test_a_warm_batch_makes_every_entry_read_the_most_recently_used() -> None:
    cache = TwoLevelCache(MemoryCache(max_entries=3, max_bytes=10_000), None)
    region: Region[int, object] = Region("r", JsonCodec(), str, lambda key: (f"t:{key}",), 60, 0)
    cache.memory.put("r:json1:1", _entry(1))
    cache.memory.put("r:json1:2", _entry(2))
    cache.memory.put("r:json1:3", _entry(3))
    # A batch with a missing key still makes the found ones the most recently used.
    assert cache._memory_hits(region, [1, 4]) is None
    cache.memory.put("r:json1:5", _entry(5))
    assert cache.memory.get("r:json1:2") is None
    assert cache._memory_hits(region, [3, 1]) == {3: 3, 1: 1}
    cache.memory.put("r:json1:6", _entry(6))
    assert cache.memory.get("r:json1:5") is None
    assert cache.stats.memory_hits == 2


def test_the_full_keys_of_int_keys_are_remembered_and_only_theirs() -> None:
    cache = TwoLevelCache(MemoryCache(max_entries=10, max_bytes=10_000), None)
    region: Region[object, object] = Region("r", JsonCodec(), str, lambda _: (), 60, 0)
    for key in ("1", "2", "True"):
        cache.memory.put(f"r:json1:{key}", _entry(key))
    assert cache._memory_hits(region, [1, 2]) == {1: "1", 2: "2"}
    assert cache._memory_hits(region, [2, 1]) == {2: "2", 1: "1"}
    # True equals 1, but its key is str(True): it does not take 1's remembered one.
    found = cache._memory_hits(region, [True, 2])
    assert found is not None
    assert list(found.values()) == ["True", "2"]


def _entry(value: object) -> Entry:
    now = time.time()
    return Entry(value, 300, now, now + 60, now + 60, (f"t:{value}",), None)


def test_settling_under_the_same_keys_gives_a_dict_of_its_own() -> None:
    values = {1: "one", 2: "two"}
    settled = Fetched(values, {}, {}).settle(same_key)
    assert settled == values
    assert settled is not values


@dataclass(frozen=True)
class _Tagged:
    tags: tuple[str, ...]
    versions: tuple[str, ...] | None
