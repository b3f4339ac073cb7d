"""The gateway's own state: version, uptime and each dependency's health."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.observability.drops import DropCounts, Drops
from dataintel.resilience import BreakerSnapshot, Dependencies

DependencyState = Literal["up", "down"]


@dataclass(frozen=True, slots=True)
class DependencyStatus:
    """One dependency's last observed health."""

    name: str
    kind: str
    state: DependencyState
    latency_ms: float | None
    checked_at: datetime
    detail: str | None = None
    required: bool = True
    """Whether readiness fails while it is down."""
    breaker: BreakerSnapshot | None = None
    """The state of its circuit breaker in this process, when it has one."""


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """What the status query reports."""

    version: str
    started_at: datetime
    uptime_seconds: float
    dependencies: Sequence[DependencyStatus]
    drops: DropCounts = field(default_factory=DropCounts)


class DependencyProbe(Protocol):
    """A cheap round trip to one dependency; raises when it is not usable."""

    name: str
    kind: str
    required: bool

    async def ping(self) -> None: ...


class StoreProbe:
    """Runs SELECT 1 on the SQL store."""

    kind = "sql"

    def __init__(self, engine: AsyncEngine, name: str = "store", required: bool = True) -> None:
        self.name = name
        self.required = required
        self._engine = engine

    async def ping(self) -> None:
        async with self._engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))


class RedisProbe:
    """Sends PING to Redis."""

    kind = "redis"

    def __init__(self, redis: Redis, name: str = "redis", required: bool = True) -> None:
        self.name = name
        self.required = required
        self._redis = redis

    async def ping(self) -> None:
        await self._redis.ping()


class StatusService(Protocol):
    """Reports the gateway's version, uptime and dependencies."""

    async def status(self) -> GatewayStatus: ...

    async def check_dependencies(self) -> Sequence[DependencyStatus]: ...


class ProbingStatusService:
    """Checks every dependency concurrently, each within its own time budget.

    Probes go straight to each dependency, not through its breaker: they must see a
    recovery that an open breaker is still waiting out. The breaker's state is reported
    beside what the probe found.
    """

    def __init__(
        self,
        version: str,
        probes: Sequence[DependencyProbe],
        timeout_seconds: float,
        breakers: Dependencies | None = None,
        drops: Drops | None = None,
    ) -> None:
        self._version = version
        self._drops = drops
        self._probes = tuple(probes)
        self._timeout = timeout_seconds
        self._breakers = breakers
        self._started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()

    async def status(self) -> GatewayStatus:
        """Version, uptime and a fresh check of each dependency."""
        return GatewayStatus(
            version=self._version,
            started_at=self._started_at,
            uptime_seconds=round(time.monotonic() - self._started_monotonic, 3),
            dependencies=await self.check_dependencies(),
            drops=self._drops.counts() if self._drops is not None else DropCounts(),
        )

    async def check_dependencies(self) -> Sequence[DependencyStatus]:
        """Ping every dependency at once; a slow one costs at most the timeout."""
        return await asyncio.gather(*(self._check(probe) for probe in self._probes))

    async def _check(self, probe: DependencyProbe) -> DependencyStatus:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(probe.ping(), self._timeout)
        except TimeoutError:
            return self._result(probe, "down", None, f"no answer within {self._timeout:g}s")
        except Exception as error:  # any failure means "not usable"; the kind is the detail
            return self._result(probe, "down", None, type(error).__name__)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return self._result(probe, "up", latency_ms, None)

    def _result(
        self,
        probe: DependencyProbe,
        state: DependencyState,
        latency_ms: float | None,
        detail: str | None,
    ) -> DependencyStatus:
        guard = self._breakers.get(probe.name) if self._breakers is not None else None
        return DependencyStatus(
            name=probe.name,
            kind=probe.kind,
            state=state,
            latency_ms=latency_ms,
            checked_at=datetime.now(UTC),
            detail=detail,
            required=probe.required,
            breaker=guard.snapshot() if guard is not None else None,
        )
