"""The Redis level: entries shared by every replica, and the tag versions that invalidate them.

A tag's version is a random token, never a counter: a Redis that restarts empty hands out
fresh tokens, so no entry written before can match again (a counter would restart at the
same numbers and revive entries that a lost invalidation should have killed).
"""

from __future__ import annotations

import secrets
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
import redis.exceptions
from redis.asyncio import Redis

from dataintel.errors import DependencyTimeoutError, DependencyUnavailableError
from dataintel.observability.logging import get_logger
from dataintel.resilience import Dependency

# A tag key outlives every entry by far; if it expires anyway, its entries only miss once.
TAG_LIFETIME_SECONDS = 86_400
_HEADER = struct.Struct(">I")
_log = get_logger("dataintel.cache")


def invalidation_channel(prefix: str) -> str:
    """The pub/sub channel every replica's bumps are published on."""
    return f"{prefix}:invalidations"


def invalidation_message(tags: Sequence[str]) -> bytes:
    """What a bump publishes: its tags and when it was made (for the lag measure)."""
    return orjson.dumps({"tags": list(tags), "at": time.time()})


def is_redis_failure(error: BaseException) -> bool:
    """Whether an error says Redis is unusable."""
    return isinstance(error, redis.exceptions.RedisError | OSError | TimeoutError)


@dataclass(frozen=True, slots=True)
class SharedEntry:
    """An entry as Redis holds it: when it was stored, its tags and their versions, its bytes."""

    stored_at: float
    ttl_seconds: float
    tags: tuple[str, ...]
    versions: tuple[str, ...]
    payload: bytes

    def pack(self) -> bytes:
        """The bytes stored in Redis."""
        header = orjson.dumps([self.stored_at, self.ttl_seconds, self.tags, self.versions])
        return _HEADER.pack(len(header)) + header + self.payload

    @classmethod
    def unpack(cls, data: bytes) -> SharedEntry | None:
        """The entry of bytes from Redis; None when they are not one."""
        try:
            (length,) = _HEADER.unpack_from(data)
            stored_at, ttl, tags, versions = orjson.loads(
                data[_HEADER.size : _HEADER.size + length]
            )
            payload = data[_HEADER.size + length :]
            return cls(float(stored_at), float(ttl), tuple(tags), tuple(versions), payload)
        except (struct.error, ValueError, TypeError, orjson.JSONDecodeError):
            return None


@dataclass(frozen=True, slots=True)
class SharedRead:
    """The current versions of some tags, and the entries found for some keys."""

    versions: Mapping[str, str]
    entries: Mapping[str, SharedEntry]


class SharedCache:
    """Entries and tag versions in Redis; every call behind the Redis breaker and budget.

    No method raises for Redis being down: reads answer None and writes False, and the
    cache carries on with its in-process level.
    """

    def __init__(self, redis: Redis, dependency: Dependency, prefix: str) -> None:
        self._redis = redis
        self.dependency = dependency
        self._prefix = prefix
        self.channel = invalidation_channel(prefix)

    def _tag_key(self, tag: str) -> str:
        return f"{self._prefix}:tag:{tag}"

    def _entry_key(self, key: str) -> str:
        return f"{self._prefix}:entry:{key}"

    async def read(self, tags: Sequence[str], keys: Sequence[str]) -> SharedRead | None:
        """Versions of ``tags`` (created when missing) and entries of ``keys``, one round trip."""
        if not self.dependency.available():
            return None
        try:
            return await self.dependency.call(lambda: self._read(tags, keys))
        except (DependencyUnavailableError, DependencyTimeoutError):
            return None

    async def _read(self, tags: Sequence[str], keys: Sequence[str]) -> SharedRead:
        pipeline = self._redis.pipeline(transaction=False)
        if tags:
            pipeline.mget([self._tag_key(tag) for tag in tags])
        if keys:
            pipeline.mget([self._entry_key(key) for key in keys])
        results = list(await pipeline.execute())
        raw_versions = results.pop(0) if tags else []
        raw_entries = results.pop(0) if keys else []
        versions = {tag: raw.decode() for tag, raw in zip(tags, raw_versions, strict=True) if raw}
        missing = [tag for tag in tags if tag not in versions]
        if missing:
            versions.update(await self._create_versions(missing))
        entries: dict[str, SharedEntry] = {}
        for key, raw in zip(keys, raw_entries, strict=True):
            entry = SharedEntry.unpack(raw) if raw else None
            if entry is not None:
                entries[key] = entry
        return SharedRead(versions, entries)

    async def _create_versions(self, tags: Sequence[str]) -> dict[str, str]:
        # SET NX then read back: of replicas racing to create a tag, one token wins for all.
        pipeline = self._redis.pipeline(transaction=False)
        for tag in tags:
            pipeline.set(self._tag_key(tag), _token(), nx=True, ex=TAG_LIFETIME_SECONDS)
        pipeline.mget([self._tag_key(tag) for tag in tags])
        raw_versions = (await pipeline.execute())[-1]
        return {tag: raw.decode() for tag, raw in zip(tags, raw_versions, strict=True) if raw}

    async def write(self, entries: Mapping[str, tuple[SharedEntry, float]]) -> bool:
        """Stores entries, each with its lifetime in seconds; False when Redis did not take them."""
        if not entries or not self.dependency.available():
            return False

        async def run() -> None:
            pipeline = self._redis.pipeline(transaction=False)
            for key, (entry, lifetime) in entries.items():
                pipeline.set(self._entry_key(key), entry.pack(), px=max(1, int(lifetime * 1000)))
            await pipeline.execute()

        try:
            await self.dependency.call(run)
        except (DependencyUnavailableError, DependencyTimeoutError):
            return False
        return True

    async def bump(self, tags: Sequence[str]) -> bool:
        """Gives each tag a new version and publishes the bump, invalidating its entries on
        every replica."""
        if not tags:
            return True

        async def run() -> None:
            pipeline = self._redis.pipeline(transaction=False)
            for tag in tags:
                pipeline.set(self._tag_key(tag), _token(), ex=TAG_LIFETIME_SECONDS)
            # After the new versions, in the same round trip: a replica that drops its entries
            # on the message and reads again finds them.
            pipeline.publish(self.channel, invalidation_message(tags))
            await pipeline.execute()

        try:
            await self.dependency.call(run)
        except (DependencyUnavailableError, DependencyTimeoutError):
            _log.warning("invalidation did not reach redis", tags=list(tags)[:20])
            return False
        return True


def _token() -> str:
    return secrets.token_hex(8)
