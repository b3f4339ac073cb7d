"""The two-level cache: in-process entries in front of Redis, tag versions, single flight
and stale-if-error.

A read takes the in-process entry when it is fresh and the level is trusted: without Redis
(the store's tag poller keeps it in step), or while the invalidation feed is subscribed
(every bump reaches it as a pub/sub message). An untrusted level (the feed is down) has its
entries revalidated against the tags' versions in Redis, and none served as fresh when Redis
cannot tell them. Then the Redis entry; otherwise it loads, once per key however many
requests miss it at the same time. When the load fails because a dependency is down or
slow, an entry past its TTL but inside the stale window stands in, and the read says so.
Redis being down never fails a read.

One class past the usual size on purpose: trust, single flight and stale-if-error act on the
same read and the same in-flight loads, so they are read together. The levels
(``memory``, ``shared``), the value codec, the tags and the stale report are modules of
their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Generic, TypeVar, cast

from dataintel.cache.codec import CodecError, ValueCodec
from dataintel.cache.freshness import StaleRead, current_trace, note_tags, report_stale
from dataintel.cache.memory import Entry, MemoryCache, entry_size
from dataintel.cache.shared import SharedCache, SharedEntry, SharedRead
from dataintel.cache.tags import EVERYTHING
from dataintel.errors import DependencyTimeoutError, DependencyUnavailableError
from dataintel.observability.logging import get_logger

K = TypeVar("K", bound=Hashable)
L = TypeVar("L", bound=Hashable)
V = TypeVar("V")
Versions = tuple[str, ...] | None

_log = get_logger("dataintel.cache")
_ABSENT = object()
"""What a load gave for a key it did not find: nothing to cache, nothing to fail."""
_STANDS_IN_FOR = (DependencyUnavailableError, DependencyTimeoutError)
_fresh_until = attrgetter("fresh_until")
_INTS = {int}
_KEY_MEMO_SIZE = 8192
"""Full keys remembered per region at most (then forgotten all at once)."""
_value_of = attrgetter("value")


@dataclass(frozen=True, slots=True)
class Region(Generic[K, V]):
    """A kind of entry: its name, how its keys are written and tagged, and how long it lives."""

    name: str
    codec: ValueCodec
    key: Callable[[K], str]
    tags: Callable[[K], tuple[str, ...]]
    ttl_seconds: float
    stale_seconds: float


class PartialResult(Exception, Generic[L, V]):
    """Some keys of a batch were served and the others failed; each key gets its outcome."""

    def __init__(self, found: Mapping[L, V], failed: Mapping[L, Exception]) -> None:
        super().__init__(f"{len(failed)} of {len(found) + len(failed)} keys failed")
        self.found = found
        self.failed = failed


def same_key(key: K) -> K:
    """The identity: ``Fetched.settle``'s rekey for values kept under the caller's keys."""
    return key


@dataclass(frozen=True, slots=True)
class Fetched(Generic[K, V]):
    """What a batch read got: values (some perhaps stale), and the keys that failed."""

    values: Mapping[K, V]
    stale: Mapping[K, StaleRead]
    failed: Mapping[K, Exception]

    def settle(self, rekey: Callable[[K], L]) -> dict[L, V]:
        """The values under the caller's keys; reports stale reads and raises failures.

        Every key failed: its error. Some did: PartialResult, which the loaders split.
        """
        for key, read in self.stale.items():
            report_stale(read, rekey(key))
        if rekey is same_key:
            # A warm batch's values under their own keys: copied in C, no call per key.
            found = cast("dict[L, V]", dict(self.values))
        else:
            found = {rekey(key): value for key, value in self.values.items()}
        if self.failed:
            if not found:
                raise next(iter(self.failed.values()))
            raise PartialResult(found, {rekey(key): error for key, error in self.failed.items()})
        return found


@dataclass(slots=True)
class CacheStats:
    """Counters of this process's cache, for tests and the benchmark."""

    memory_hits: int = 0
    shared_hits: int = 0
    misses: int = 0
    loads: int = 0
    stale_served: int = 0


class TwoLevelCache:
    """In-process entries in front of Redis (when configured), shared by every request."""

    def __init__(
        self,
        memory: MemoryCache,
        shared: SharedCache | None,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.memory = memory
        self.shared = shared
        self.enabled = enabled
        self.stats = CacheStats()
        self.observer: Callable[[str, str, str, int], None] | None = None
        """Told (cache, level, outcome, count) of lookups: the metrics."""
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[object]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Bumped by every invalidation, so a load that raced one is not kept.
        self._generation = 0
        self._codec_failures: set[str] = set()
        self._key_memo: dict[str, dict[object, str]] = {}
        """Full keys of int keys, by region prefix (``_full_keys``)."""
        # Without Redis there is nothing to check entries against: the level is all there is.
        self._trusted = shared is None

    @property
    def memory_trusted(self) -> bool:
        """Whether a fresh in-process entry is served without asking Redis."""
        return self._trusted

    def trust_memory(self) -> None:
        """The invalidation feed is (again) subscribed: drops what it may have missed."""
        self._generation += 1
        self.memory.clear()
        self._trusted = True

    def distrust_memory(self) -> None:
        """The feed is down: in-process entries are revalidated from now on."""
        if self.shared is not None:
            self._generation += 1
            self._trusted = False

    def drop_local(self, tags: Iterable[str]) -> None:
        """Drops this process's entries carrying any of the tags (a bump made anywhere)."""
        chosen = list(dict.fromkeys(tags))
        self._generation += 1
        if EVERYTHING in chosen:
            self.memory.clear()
        else:
            self.memory.drop_tags(chosen)

    def _memory_hits(self, region: Region[K, V], keys: Sequence[K]) -> dict[K, V] | None:
        """Every key's value from a trusted in-process level, or None when one is missing."""
        now = self._clock()
        # The hot path of every warm read: what _full_key does, with the prefix made once,
        # and each pass over the batch's keys made by C (map, all, min, dict) rather than a
        # Python loop per key.
        prefix = f"{region.name}:{region.codec.version}:"
        full_keys = self._full_keys(prefix, region.key, keys)
        memory = self.memory
        entries = memory.peek_many(full_keys)
        if not all(entries):
            # One is missing: each found one still made the most recently used, as a read does.
            memory.touch_found(full_keys, entries)
            return None
        memory.touch(full_keys)
        found_entries = cast("list[Entry]", entries)
        if found_entries and now >= min(map(_fresh_until, found_entries)):
            return None
        found = cast("dict[K, V]", dict(zip(keys, map(_value_of, found_entries), strict=True)))
        trace = current_trace()
        if trace is not None:
            trace.note_entries(found_entries)
        self.stats.memory_hits += len(found)
        if self.observer is not None:
            self.observer("entity", "memory", "hit", len(found))
        return found

    def _full_keys(self, prefix: str, key_of: Callable[[K], str], keys: Sequence[K]) -> list[str]:
        """``prefix + key_of(key)`` for each key; for a batch of ints keyed by ``str`` (the
        entities by id), remembered per prefix: ``str`` of an int and the concatenation cost
        several hundred instructions a key, a lookup a tenth of that. Only exact ints: a
        bool or a float equal to one would share its entry but not its string."""
        if key_of is str and len(keys) > 1 and set(map(type, keys)) == _INTS:
            memo = self._key_memo.get(prefix)
            if memo is None:
                memo = self._key_memo[prefix] = {}
            full = list(map(memo.get, keys))
            if all(full):
                return cast("list[str]", full)
            if len(memo) >= _KEY_MEMO_SIZE:
                memo.clear()
            for index, key in enumerate(keys):
                if full[index] is None:
                    full[index] = memo[key] = prefix + str(key)
            return cast("list[str]", full)
        return list(map(prefix.__add__, map(key_of, keys)))

    async def fetch(self, region: Region[K, V], key: K, load: Callable[[], Awaitable[V]]) -> V:
        """One value: cached, loaded, or stale in place of a failed load (reported)."""
        if not self.enabled:
            return await load()
        if self._trusted:
            # What fetch_many answers for a fresh in-process hit, without its bookkeeping.
            hits = self._memory_hits(region, (key,))
            if hits is not None:
                return hits[key]

        async def load_one(_: Sequence[K]) -> Mapping[K, V]:
            return {key: await load()}

        fetched = await self.fetch_many(region, [key], load_one)
        if key in fetched.failed:
            raise fetched.failed[key]
        if key in fetched.stale:
            report_stale(fetched.stale[key])
        return fetched.values[key]

    async def fetch_many(
        self,
        region: Region[K, V],
        keys: Sequence[K],
        load: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
    ) -> Fetched[K, V]:
        """Many values in one pass over each level; one load for every key that missed."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return Fetched({}, {}, {})
        if not self.enabled:
            return Fetched(await load(wanted), {}, {})
        if self._trusted:
            hits = self._memory_hits(region, wanted)
            if hits is not None:
                return Fetched(hits, {}, {})
        generation = self._generation
        now = self._clock()
        full = {key: self._full_key(region, key) for key in wanted}
        tags = {key: (*region.tags(key), EVERYTHING) for key in wanted}
        all_tags = list(dict.fromkeys(tag for key in wanted for tag in tags[key]))
        local = {key: self.memory.get(full[key]) for key in wanted}
        not_fresh = [full[key] for key in wanted if not _fresh(local[key], now)]
        shared = await self._read_shared(all_tags, not_fresh)
        note_tags(all_tags, shared.versions if shared is not None else None)
        expected: dict[K, Versions] = {
            key: None if shared is None else _versions(shared, tags[key]) for key in wanted
        }
        # A bump seen while Redis answered may be older than the answer: keep nothing read.
        keep = generation == self._generation
        values: dict[K, V] = {}
        stand_ins: dict[K, Entry] = {}
        misses: list[K] = []
        for key in wanted:
            entry = local[key]
            if entry is not None and not self._valid(entry, expected[key]):
                if expected[key] is not None:
                    self.memory.discard(full[key])
                    entry = None
                else:
                    # Unknown versions: the entry may still stand in for a failed load.
                    entry = _expired(entry, now)
            from_memory = entry is not None and entry.is_fresh(now)
            if not from_memory and shared is not None:
                entry = self._promote(region, full[key], shared, expected[key], entry, now, keep)
            if entry is not None and entry.is_fresh(now):
                values[key] = cast(V, entry.value)
                if from_memory:
                    self.stats.memory_hits += 1
                else:
                    self.stats.shared_hits += 1
                if self.observer is not None:
                    self.observer("entity", "memory" if from_memory else "redis", "hit", 1)
                continue
            if entry is not None and entry.may_stand_in(now):
                stand_ins[key] = entry
            misses.append(key)
        if not misses:
            return Fetched(values, {}, {})
        self.stats.misses += len(misses)
        if self.observer is not None:
            self.observer("entity", "none", "miss", len(misses))
        outcomes = await self._load(region, misses, load, full, tags, expected)
        return self._settle(values, stand_ins, misses, outcomes)

    async def get(self, region: Region[K, V], key: K) -> tuple[V, float] | None:
        """A fresh, still valid value and its age in seconds; None on a miss.

        For entries whose tags are known only once stored (see ``put``): the tags are read
        from the entry, then their versions checked.
        """
        if not self.enabled:
            return None
        hit = self.memory_hit(region, key)
        if hit is not None:
            return hit
        now = self._clock()
        full_key = self._full_key(region, key)
        entry = self.memory.get(full_key)
        generation = self._generation
        level = "memory"
        if entry is None or not entry.is_fresh(now):
            entry = await self._shared_entry(region, full_key, now)
            level = "redis"
        if entry is None or not entry.is_fresh(now):
            if self.observer is not None:
                self.observer("response", "none", "miss", 1)
            return None
        if self.shared is not None:
            current = await self.shared.read(entry.tags, ())
            expected = None if current is None else _versions(current, entry.tags)
            if not self._valid(entry, expected):
                self.memory.discard(full_key)
                if self.observer is not None:
                    self.observer("response", "none", "miss", 1)
                return None
        if level == "redis" and generation == self._generation:
            # Checked above and no bump seen since: safe to keep in this process.
            self.memory.put(full_key, entry)
        self.stats.memory_hits += 1
        if self.observer is not None:
            self.observer("response", level, "hit", 1)
        return cast(V, entry.value), round(now - entry.stored_at, 3)

    def memory_hit(self, region: Region[K, V], key: K) -> tuple[V, float] | None:
        """What ``get`` answers from a trusted in-process level's fresh entry, without a
        coroutine (the response cache's hit); None when ``get`` must look further."""
        if not self._trusted or not self.enabled:
            return None
        entry = self.memory.get(self._full_key(region, key))
        if entry is None:
            return None
        now = self._clock()
        if now >= entry.fresh_until:
            return None
        self.stats.memory_hits += 1
        if self.observer is not None:
            self.observer("response", "memory", "hit", 1)
        # Neither typing.cast (a call at run time) nor round's decimal conversion: the same
        # value and the same age, on every response-cache hit.
        value: V = entry.value  # type: ignore[assignment]
        return value, round(now - entry.stored_at, 3)

    @property
    def generation(self) -> int:
        """Changes with every invalidation made in this process."""
        return self._generation

    async def put(
        self,
        region: Region[K, V],
        key: K,
        value: V,
        read: Mapping[str, str | None],
        ttl_seconds: float,
        generation: int,
    ) -> None:
        """Stores a value built from other reads, under their tags and the versions then read.

        ``generation`` is ``self.generation`` from before those reads: a value that raced a
        local invalidation is not kept.
        """
        if not self.enabled or ttl_seconds <= 0 or generation != self._generation:
            return
        chosen = tuple(dict.fromkeys((*region.tags(key), *read, EVERYTHING)))
        known = dict(read)
        unread = [tag for tag in chosen if tag not in known]
        if unread:
            current = await self._read_shared(unread, ())
            known.update((tag, current.versions.get(tag) if current else None) for tag in unread)
            if generation != self._generation:
                return
        listed = tuple(known[tag] for tag in chosen)
        versions = None if any(version is None for version in listed) else cast(Versions, listed)
        full_key = self._full_key(region, key)
        sized: Region[K, V] = Region(
            region.name, region.codec, region.key, region.tags, ttl_seconds, 0.0
        )
        kept = self._keep(sized, full_key, chosen, versions, value, self._clock())
        if kept is not None and self.shared is not None:
            await self.shared.write({full_key: (kept, ttl_seconds)})

    async def _shared_entry(self, region: Region[K, V], full_key: str, now: float) -> Entry | None:
        if self.shared is None:
            return None
        found = await self.shared.read((), (full_key,))
        if found is None:
            return None
        return self._promote(region, full_key, found, None, None, now, keep=False)

    async def invalidate(self, tags: Iterable[str]) -> bool:
        """Drops every entry carrying any of the tags, here and (through Redis) everywhere.

        Call it after the write has committed. False when Redis did not take it: the other
        replicas then keep their entries until their TTL.
        """
        chosen = list(dict.fromkeys(tags))
        self.drop_local(chosen)
        if self.shared is None:
            return True
        return await self.shared.bump(chosen)

    async def settle_loads(self) -> None:
        """Waits for the loads still running and their writes to Redis (each is bounded)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _valid(self, entry: Entry, expected: Versions) -> bool:
        # Unknown current versions (Redis down or absent): only a trusted level may answer.
        if expected is None:
            return self._trusted
        return entry.versions == expected

    def _full_key(self, region: Region[K, V], key: K) -> str:
        return f"{region.name}:{region.codec.version}:{region.key(key)}"

    async def _read_shared(self, tags: Sequence[str], keys: Sequence[str]) -> SharedRead | None:
        if self.shared is None:
            return None
        return await self.shared.read(tags, keys)

    def _promote(
        self,
        region: Region[K, V],
        full_key: str,
        shared: SharedRead,
        expected: Versions,
        local: Entry | None,
        now: float,
        keep: bool = True,
    ) -> Entry | None:
        """The Redis entry, decoded (into the in-process level when ``keep``), when it beats
        the local one.

        ``expected`` None takes the entry's versions as they are (``get`` checks them after).
        """
        found = shared.entries.get(full_key)
        if found is None or (expected is not None and found.versions != expected):
            return local
        if local is not None and local.stored_at >= found.stored_at:
            return local
        fresh_until = found.stored_at + found.ttl_seconds
        if now >= fresh_until + region.stale_seconds:
            return local
        try:
            value = region.codec.decode(found.payload)
        except CodecError:
            return local
        entry = Entry(
            value=value,
            size=entry_size(full_key, found.payload),
            stored_at=found.stored_at,
            fresh_until=fresh_until,
            stale_until=fresh_until + region.stale_seconds,
            tags=found.tags,
            versions=found.versions,
        )
        if keep:
            self.memory.put(full_key, entry)
        return entry

    async def _load(
        self,
        region: Region[K, V],
        keys: Sequence[K],
        load: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        full: Mapping[K, str],
        tags: Mapping[K, tuple[str, ...]],
        expected: Mapping[K, Versions],
    ) -> dict[K, object]:
        """Each key's loaded value, _ABSENT or error; keys already loading are waited for."""
        loop = asyncio.get_running_loop()
        futures: dict[K, asyncio.Future[object]] = {}
        leading: list[K] = []
        for key in keys:
            future = self._inflight.get(full[key])
            if future is None:
                future = loop.create_future()
                future.add_done_callback(_retrieve)
                self._inflight[full[key]] = future
                leading.append(key)
            futures[key] = future
        if leading:
            self.stats.loads += 1
            # The load runs in its own task: a waiting request that is cancelled must not
            # cancel it for the other requests waiting on the same keys.
            task = asyncio.create_task(
                self._lead(region, leading, load, futures, full, tags, expected)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        outcomes: dict[K, object] = {}
        for key, future in futures.items():
            try:
                outcomes[key] = await asyncio.shield(future)
            except Exception as error:
                outcomes[key] = error
        return outcomes

    async def _lead(
        self,
        region: Region[K, V],
        keys: Sequence[K],
        load: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        futures: Mapping[K, asyncio.Future[object]],
        full: Mapping[K, str],
        tags: Mapping[K, tuple[str, ...]],
        expected: Mapping[K, Versions],
    ) -> None:
        generation = self._generation
        try:
            loaded = await load(keys)
        except Exception as error:
            self._release(keys, full, futures)
            for key in keys:
                futures[key].set_exception(error)
            return
        except BaseException:
            self._release(keys, full, futures)
            for key in keys:
                futures[key].cancel()
            raise
        writes: dict[str, tuple[SharedEntry, float]] = {}
        if generation == self._generation:
            now = self._clock()
            lifetime = region.ttl_seconds + region.stale_seconds
            for key in keys:
                if key not in loaded:
                    continue
                kept = self._keep(region, full[key], tags[key], expected[key], loaded[key], now)
                if kept is not None:
                    writes[full[key]] = (kept, lifetime)
        self._release(keys, full, futures)
        for key in keys:
            futures[key].set_result(loaded.get(key, _ABSENT))
        if writes and self.shared is not None:
            await self.shared.write(writes)

    def _release(
        self,
        keys: Sequence[K],
        full: Mapping[K, str],
        futures: Mapping[K, asyncio.Future[object]],
    ) -> None:
        for key in keys:
            if self._inflight.get(full[key]) is futures[key]:
                del self._inflight[full[key]]

    def _keep(
        self,
        region: Region[K, V],
        full_key: str,
        tags: tuple[str, ...],
        versions: Versions,
        value: V,
        now: float,
    ) -> SharedEntry | None:
        """Stores a loaded value in memory; the Redis entry to write when versions are known."""
        try:
            payload = region.codec.encode(value)
        except (CodecError, TypeError) as error:
            if region.name not in self._codec_failures:
                self._codec_failures.add(region.name)
                _log.error("value cannot be cached", region=region.name, error=str(error))
            return None
        fresh_until = now + region.ttl_seconds
        entry = Entry(
            value=value,
            size=entry_size(full_key, payload),
            stored_at=now,
            fresh_until=fresh_until,
            stale_until=fresh_until + region.stale_seconds,
            tags=tags,
            versions=versions,
        )
        self.memory.put(full_key, entry)
        if versions is None:
            # Unversioned entries stay in this process: Redis could not say what they match.
            return None
        return SharedEntry(now, region.ttl_seconds, tags, versions, payload)

    def _settle(
        self,
        values: dict[K, V],
        stand_ins: Mapping[K, Entry],
        misses: Sequence[K],
        outcomes: Mapping[K, object],
    ) -> Fetched[K, V]:
        now = self._clock()
        stale: dict[K, StaleRead] = {}
        failed: dict[K, Exception] = {}
        for key in misses:
            outcome = outcomes[key]
            if outcome is _ABSENT:
                continue
            if not isinstance(outcome, Exception):
                values[key] = cast(V, outcome)
                continue
            entry = stand_ins.get(key)
            if entry is None or not isinstance(outcome, _STANDS_IN_FOR):
                failed[key] = outcome
                continue
            values[key] = cast(V, entry.value)
            dependency = outcome.details.get("dependency")
            stale[key] = StaleRead(
                age_seconds=round(now - entry.stored_at, 3),
                code=outcome.code.value,
                dependency=dependency if isinstance(dependency, str) else None,
            )
            self.stats.stale_served += 1
            if self.observer is not None:
                self.observer("entity", "none", "stale", 1)
        return Fetched(values, stale, failed)


def _fresh(entry: Entry | None, now: float) -> bool:
    return entry is not None and entry.is_fresh(now)


def _expired(entry: Entry, now: float) -> Entry:
    """The entry as one past its TTL: it may stand in for a failed load, never serve fresh."""
    return dataclasses.replace(entry, fresh_until=min(entry.fresh_until, now))


def _versions(shared: SharedRead, tags: tuple[str, ...]) -> tuple[str, ...]:
    # A tag Redis could not version gets "", which no entry was ever written under.
    return tuple(shared.versions.get(tag, "") for tag in tags)


def _retrieve(future: asyncio.Future[object]) -> None:
    # Marks the error as seen: when every waiter was cancelled, nobody else would.
    if not future.cancelled():
        future.exception()
