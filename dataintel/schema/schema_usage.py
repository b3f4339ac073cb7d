"""Schema usage: who still selects which field, argument or enum value (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from dataintel.directives.auth import Auth
from dataintel.resolvers import schema_usage as resolvers
from dataintel.resolvers.info import Info
from dataintel.services import schema_usage as records
from dataintel.services.auth import ADMIN_ROLE

_GRAPHQL_INT_MAX = 2**31 - 1


@strawberry.type(description="How many requests of one client selected a schema coordinate.")
class ClientUsage:
    client: str = strawberry.field(
        description="user:<id> for a credential (an API key counts as its user), client:<name>"
        " from the apollographql-client-name or graphql-client-name header, or anonymous."
    )
    requests: int = strawberry.field(description="Its requests that selected the coordinate.")


@strawberry.type(
    description="The use of one schema coordinate (Type.field, Type.field(arg:), Enum.VALUE)"
    " since counting began, across every replica sharing Redis."
)
class SchemaCoordinateUsage:
    coordinate: str = strawberry.field(description="The schema coordinate, e.g. Order.total.")
    requests: int = strawberry.field(
        description="Requests whose operation selected it (capped at 2147483647)."
    )
    clients: int = strawberry.field(
        description="Distinct clients that sent those requests (through Redis a HyperLogLog"
        " estimate, within about 1%)."
    )
    last_seen: datetime | None = strawberry.field(
        description="When a request last selected it (UTC); null when none did."
    )
    deprecation_reason: str | None = strawberry.field(
        description="Why it is deprecated; null when it is not."
    )
    top_clients: list[ClientUsage] = strawberry.field(
        description="The clients that selected it most, with their requests (at most ten)."
    )

    @classmethod
    def from_record(cls, record: records.CoordinateUsageRecord) -> SchemaCoordinateUsage:
        return cls(
            coordinate=record.coordinate,
            requests=min(record.requests, _GRAPHQL_INT_MAX),
            clients=min(record.clients, _GRAPHQL_INT_MAX),
            last_seen=record.last_seen,
            deprecation_reason=record.deprecation_reason,
            top_clients=[
                ClientUsage(client=client.client, requests=min(client.requests, _GRAPHQL_INT_MAX))
                for client in record.top_clients
            ],
        )


@strawberry.type
class SchemaUsageQuery:
    @strawberry.field(
        description="Which schema coordinates requests select, and which clients: the data to"
        " decide when a deprecated field can go (docs/schema-evolution.md). Admins only; null with"
        " FORBIDDEN for others.",
        directives=[Auth(roles=[ADMIN_ROLE])],
    )
    async def schema_usage(
        self,
        info: Info,
        deprecated_only: Annotated[
            bool,
            strawberry.argument(
                description="Only deprecated coordinates, each listed even when nothing used it."
            ),
        ] = True,
    ) -> list[SchemaCoordinateUsage] | None:
        found = await resolvers.coordinates(info, deprecated_only)
        return [SchemaCoordinateUsage.from_record(record) for record in found]
