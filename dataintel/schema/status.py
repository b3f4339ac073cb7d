"""The status domain: version, uptime and the health of each dependency."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from dataintel.directives.auth import PUBLIC
from dataintel.observability.drops import DropCounts
from dataintel.resilience import BreakerSnapshot
from dataintel.resolvers import status as resolvers
from dataintel.resolvers.info import Info
from dataintel.services.status import DependencyStatus, GatewayStatus


@strawberry.enum(description="Whether a dependency answered its last check.")
class DependencyState(enum.Enum):
    UP = "up"
    DOWN = "down"


@strawberry.enum(description="A circuit breaker's state.")
class BreakerState(enum.Enum):
    CLOSED = strawberry.enum_value("closed", description="Calls go through.")
    OPEN = strawberry.enum_value(
        "open", description="Calls fail fast with DEPENDENCY_UNAVAILABLE until the reset timeout."
    )
    HALF_OPEN = strawberry.enum_value(
        "half-open", description="One trial call goes through; its outcome closes or reopens."
    )


@strawberry.type(
    name="CircuitBreaker",
    description="The circuit breaker around a dependency, in this replica (breakers are"
    " per process).",
)
class BreakerType:
    state: BreakerState = strawberry.field(description="CLOSED, OPEN or HALF_OPEN.")
    failures: int = strawberry.field(description="Consecutive failures counted so far.")
    fail_max: int = strawberry.field(description="Consecutive failures that open it.")
    reset_timeout_seconds: float = strawberry.field(
        description="Seconds it stays open before letting a trial call through."
    )
    timeout_seconds: float = strawberry.field(
        description="Time budget of each call to the dependency."
    )
    retry_after_seconds: float | None = strawberry.field(
        description="Seconds until a retry may succeed; null while closed."
    )
    changed_at: datetime | None = strawberry.field(
        description="When its state last changed (UTC); null if it never has."
    )

    @classmethod
    def from_record(cls, record: BreakerSnapshot) -> BreakerType:
        return cls(
            state=BreakerState(record.state),
            failures=record.failures,
            fail_max=record.fail_max,
            reset_timeout_seconds=record.reset_timeout_seconds,
            timeout_seconds=record.timeout_seconds,
            retry_after_seconds=record.retry_after_seconds,
            changed_at=record.changed_at,
        )


@strawberry.type(name="Dependency", description="A system the gateway depends on.")
class DependencyType:
    name: str = strawberry.field(description="The dependency's name, e.g. store or redis.")
    kind: str = strawberry.field(description="What it is: sql, redis, http.")
    state: DependencyState = strawberry.field(description="UP or DOWN at its last check.")
    latency_ms: float | None = strawberry.field(
        description="Round-trip time of the last check in milliseconds; null when down."
    )
    checked_at: datetime = strawberry.field(description="When it was last checked (UTC).")
    detail: str | None = strawberry.field(description="Why it is down, when it is.")
    required: bool = strawberry.field(
        description="Whether readiness fails while it is down; the gateway degrades without"
        " the others."
    )
    breaker: BreakerType | None = strawberry.field(
        description="Its circuit breaker in this replica; null when it has none."
    )

    @classmethod
    def from_record(cls, record: DependencyStatus) -> DependencyType:
        return cls(
            name=record.name,
            kind=record.kind,
            state=DependencyState(record.state),
            latency_ms=record.latency_ms,
            checked_at=record.checked_at,
            detail=record.detail,
            required=record.required,
            breaker=BreakerType.from_record(record.breaker) if record.breaker else None,
        )


@strawberry.type(
    name="Drops",
    description="Work this replica gave up on since it started, so that requests would not"
    " wait or fail (docs/observability.md).",
)
class DropsType:
    audit_queue_overflow: int = strawberry.field(
        description="Audit entries nobody awaited that found the audit writer's queue full."
    )
    audit_write_failed: int = strawberry.field(
        description="Audit entries nobody awaited whose batch the store refused."
    )
    api_key_touch_failed: int = strawberry.field(
        description="API-key uses whose last-use time could not be written."
    )
    persisted_query_store_failed: int = strawberry.field(
        description="Automatic persisted queries that could not be shared through Redis."
    )

    @classmethod
    def from_record(cls, record: DropCounts) -> DropsType:
        return cls(
            audit_queue_overflow=record.audit_queue_overflow,
            audit_write_failed=record.audit_write_failed,
            api_key_touch_failed=record.api_key_touch_failed,
            persisted_query_store_failed=record.apq_store_failed,
        )


@strawberry.type(name="Status", description="The gateway's own state.")
class StatusType:
    version: str = strawberry.field(description="The gateway's release version.")
    started_at: datetime = strawberry.field(description="When this process started (UTC).")
    uptime_seconds: float = strawberry.field(description="Seconds since this process started.")
    dependencies: list[DependencyType] = strawberry.field(
        description="Each dependency with its kind, state and last latency."
    )
    drops: DropsType = strawberry.field(
        description="Work this replica gave up on since it started, by kind."
    )

    @classmethod
    def from_record(cls, record: GatewayStatus) -> StatusType:
        return cls(
            version=record.version,
            started_at=record.started_at,
            uptime_seconds=record.uptime_seconds,
            dependencies=[DependencyType.from_record(d) for d in record.dependencies],
            drops=DropsType.from_record(record.drops),
        )


@strawberry.type
class StatusQuery:
    @strawberry.field(
        description="Version, uptime and dependency health of this replica.", directives=[PUBLIC]
    )
    async def status(self, info: Info) -> StatusType:
        return StatusType.from_record(await resolvers.gateway_status(info))
