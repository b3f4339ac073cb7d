"""Who still selects which schema coordinate: requests, distinct clients and last use.

A request costs one dictionary update: it counts under the set of coordinates its operation
selects (computed once per cached document), and each set is spread over its coordinates
only when the counts are read or shared. With Redis, every replica adds its counts there
(a hash per coordinate, a HyperLogLog of its clients, a sorted set of requests per client),
so any replica answers for all of them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from redis.asyncio import Redis

from dataintel.errors import DependencyTimeoutError, DependencyUnavailableError
from dataintel.observability.logging import get_logger
from dataintel.resilience import Dependency

USAGE_KEY_PREFIX = "dataintel:schema-usage:"
"""Redis keys of the shared counts: <prefix><coordinate> (hash), :clients, :by-client."""
CLIENT_NAME_HEADERS = ("apollographql-client-name", "graphql-client-name")
"""Headers naming the client application (Apollo's, and the generic one)."""
ANONYMOUS_CLIENT = "anonymous"
MAX_CLIENTS_PER_COORDINATE = 1000
"""Clients whose requests are counted one by one per coordinate; the rest only in totals."""
TOP_CLIENTS = 10
_CLIENT_NAME = re.compile(r"[!-~][ -~]{0,99}")
_log = get_logger("dataintel.schema_usage")


def client_name(headers: Mapping[str, str]) -> str | None:
    """The client application a request names in its headers (printable, at most 100 chars)."""
    for header in CLIENT_NAME_HEADERS:
        value = headers.get(header, "").strip()
        if value and _CLIENT_NAME.fullmatch(value):
            return value
    return None


def client_identity(user_id: str | None, name: str | None) -> str:
    """Who a request counts for: its credential's user, else its client name, else anonymous."""
    if user_id is not None:
        return f"user:{user_id}"
    if name is not None:
        return f"client:{name}"
    return ANONYMOUS_CLIENT


@dataclass(frozen=True, slots=True)
class ClientUsageRecord:
    """How many requests of one client selected a coordinate."""

    client: str
    requests: int


@dataclass(frozen=True, slots=True)
class CoordinateUsageRecord:
    """The use of one schema coordinate across the replicas that share counts."""

    coordinate: str
    requests: int
    clients: int
    last_seen: datetime | None
    deprecation_reason: str | None
    top_clients: tuple[ClientUsageRecord, ...]


class SchemaUsageService(Protocol):
    """Counts of the schema coordinates requests select."""

    def record(self, coordinates: frozenset[str], user_id: str | None, name: str | None) -> None:
        """Counts one request selecting these coordinates."""
        ...

    async def usage(self, deprecated_only: bool) -> list[CoordinateUsageRecord]:
        """Every coordinate used (and every deprecated one), most requested first."""
        ...


@dataclass(slots=True)
class _Tally:
    requests: int = 0
    clients: Counter[str] = field(default_factory=Counter)
    last_seen: float = 0.0

    def count(self, client: str, requests: int, at: float) -> None:
        self.requests += requests
        if client in self.clients or len(self.clients) < MAX_CLIENTS_PER_COORDINATE:
            self.clients[client] += requests
        self.last_seen = max(self.last_seen, at)

    def merge(self, other: _Tally) -> None:
        for client, requests in other.clients.items():
            self.count(client, requests, other.last_seen)
        self.requests += other.requests - other.clients.total()
        self.last_seen = max(self.last_seen, other.last_seen)


class SchemaUsageRecorder:
    """SchemaUsageService in this process, shared through Redis once connected."""

    def __init__(
        self,
        deprecated: Mapping[str, str],
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
        key_prefix: str = USAGE_KEY_PREFIX,
    ) -> None:
        self._deprecated = dict(deprecated)
        self._enabled = enabled
        self._clock = clock
        self._prefix = key_prefix
        self._pending: dict[frozenset[str], _Tally] = {}
        self._totals: dict[str, _Tally] = {}
        self._unshared: dict[str, _Tally] = {}
        self._redis: Redis | None = None
        self._dependency: Dependency | None = None

    def connect(self, redis: Redis | None, dependency: Dependency | None) -> None:
        """Shares counts through this Redis, behind its breaker (None: this process only)."""
        self._redis = redis
        self._dependency = dependency

    def record(self, coordinates: frozenset[str], user_id: str | None, name: str | None) -> None:
        """Counts one request selecting these coordinates."""
        if not self._enabled or not coordinates:
            return
        tally = self._pending.get(coordinates)
        if tally is None:
            tally = self._pending[coordinates] = _Tally()
        tally.count(client_identity(user_id, name), 1, self._clock())

    def _spread(self) -> None:
        """Moves the counts per coordinate set onto each coordinate of the set."""
        pending, self._pending = self._pending, {}
        shared = self._redis is not None
        for coordinates, tally in pending.items():
            for coordinate in coordinates:
                self._totals.setdefault(coordinate, _Tally()).merge(tally)
                if shared:
                    self._unshared.setdefault(coordinate, _Tally()).merge(tally)

    async def flush(self) -> bool:
        """Adds this process's new counts to Redis; False (they are kept) when it failed."""
        self._spread()
        if self._redis is None or not self._unshared:
            return True
        unshared, self._unshared = self._unshared, {}
        try:
            await self._call(lambda: self._write(unshared))
        except (DependencyUnavailableError, DependencyTimeoutError):
            for coordinate, tally in unshared.items():
                self._unshared.setdefault(coordinate, _Tally()).merge(tally)
            return False
        return True

    async def _write(self, unshared: Mapping[str, _Tally]) -> None:
        assert self._redis is not None
        pipeline = self._redis.pipeline(transaction=False)
        pipeline.sadd(self._prefix + "coordinates", *unshared)
        pipeline.zadd(
            self._prefix + "last-seen",
            {coordinate: tally.last_seen for coordinate, tally in unshared.items()},
            gt=True,
        )
        for coordinate, tally in unshared.items():
            key = self._prefix + coordinate
            pipeline.hincrby(key, "requests", tally.requests)
            pipeline.pfadd(key + ":clients", *tally.clients)
            for client, requests in tally.clients.items():
                pipeline.zincrby(key + ":by-client", requests, client)
            pipeline.zremrangebyrank(key + ":by-client", 0, -MAX_CLIENTS_PER_COORDINATE - 1)
        await pipeline.execute()

    async def _call(self, operation: Callable[[], Awaitable[Any]]) -> Any:
        if self._dependency is None:
            return await operation()
        return await self._dependency.call(operation)

    async def run(self, interval_seconds: float) -> None:
        """Flushes every interval until cancelled (the app's background task)."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                shared = await self.flush()
            except Exception:
                # An unexpected answer must not end counting for the rest of the process's life.
                _log.exception("schema usage flush failed")
                continue
            if not shared:
                _log.warning("schema usage counts did not reach redis; kept for the next try")

    async def usage(self, deprecated_only: bool) -> list[CoordinateUsageRecord]:
        """Every coordinate used (and every deprecated one), most requested first."""
        shared = await self.flush() and self._redis is not None
        records: list[CoordinateUsageRecord] | None = None
        if shared:
            try:
                records = await self._call(lambda: self._read_shared(deprecated_only))
            except (DependencyUnavailableError, DependencyTimeoutError):
                _log.warning("schema usage read from this process only: redis is unavailable")
        if records is None:
            records = self._read_local(deprecated_only)
        return sorted(records, key=lambda record: (-record.requests, record.coordinate))

    def _wanted(self, used: set[str], deprecated_only: bool) -> list[str]:
        every = used | set(self._deprecated)
        return sorted(c for c in every if not deprecated_only or c in self._deprecated)

    def _read_local(self, deprecated_only: bool) -> list[CoordinateUsageRecord]:
        records = []
        for coordinate in self._wanted(set(self._totals), deprecated_only):
            tally = self._totals.get(coordinate, _Tally())
            records.append(
                CoordinateUsageRecord(
                    coordinate,
                    tally.requests,
                    len(tally.clients),
                    _moment(tally.last_seen),
                    self._deprecated.get(coordinate),
                    _top(tally.clients.items()),
                )
            )
        return records

    async def _read_shared(self, deprecated_only: bool) -> list[CoordinateUsageRecord]:
        assert self._redis is not None
        used = {
            _text(member) for member in await self._redis.smembers(self._prefix + "coordinates")
        }
        wanted = self._wanted(used, deprecated_only)
        pipeline = self._redis.pipeline(transaction=False)
        for coordinate in wanted:
            key = self._prefix + coordinate
            pipeline.hget(key, "requests")
            pipeline.pfcount(key + ":clients")
            pipeline.zscore(self._prefix + "last-seen", coordinate)
            pipeline.zrevrange(key + ":by-client", 0, TOP_CLIENTS - 1, withscores=True)
        answers = await pipeline.execute() if wanted else []
        records = []
        for position, coordinate in enumerate(wanted):
            requests, clients, last_seen, top = answers[4 * position : 4 * position + 4]
            records.append(
                CoordinateUsageRecord(
                    coordinate,
                    int(requests or 0),
                    int(clients or 0),
                    _moment(float(last_seen or 0.0)),
                    self._deprecated.get(coordinate),
                    _top((_text(client), int(count)) for client, count in top),
                )
            )
        return records


def _top(clients: Iterable[tuple[str, int]]) -> tuple[ClientUsageRecord, ...]:
    """The most frequent clients, ties by name, so every replica lists them alike."""
    ranked = sorted(clients, key=lambda item: (-item[1], item[0]))[:TOP_CLIENTS]
    return tuple(ClientUsageRecord(client, requests) for client, requests in ranked)


def _moment(timestamp: float) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
