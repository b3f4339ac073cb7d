"""The status domain: version, uptime and the health of each dependency."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from dataintel.resolvers import status as resolvers
from dataintel.resolvers.info import Info
from dataintel.services.status import DependencyStatus, GatewayStatus


@strawberry.enum(description="Whether a dependency answered its last check.")
class DependencyState(enum.Enum):
    UP = "up"
    DOWN = "down"


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

    @classmethod
    def from_record(cls, record: DependencyStatus) -> DependencyType:
        return cls(
            name=record.name,
            kind=record.kind,
            state=DependencyState(record.state),
            latency_ms=record.latency_ms,
            checked_at=record.checked_at,
            detail=record.detail,
        )


@strawberry.type(name="Status", description="The gateway's own state.")
class StatusType:
    version: str = strawberry.field(description="The gateway's release version.")
    started_at: datetime = strawberry.field(description="When this process started (UTC).")
    uptime_seconds: float = strawberry.field(description="Seconds since this process started.")
    dependencies: list[DependencyType] = strawberry.field(
        description="Each dependency with its kind, state and last latency."
    )

    @classmethod
    def from_record(cls, record: GatewayStatus) -> StatusType:
        return cls(
            version=record.version,
            started_at=record.started_at,
            uptime_seconds=record.uptime_seconds,
            dependencies=[DependencyType.from_record(d) for d in record.dependencies],
        )


@strawberry.type
class StatusQuery:
    @strawberry.field(description="Version, uptime and dependency health of this replica.")
    async def status(self, info: Info) -> StatusType:
        return StatusType.from_record(await resolvers.gateway_status(info))
