"""Relay's Global Object Identification: ``node(id:)`` and ``nodes(ids:)`` on Query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import strawberry

from dataintel.directives.auth import PUBLIC
from dataintel.directives.cost import Cost
from dataintel.resolvers import object_identification as resolvers
from dataintel.resolvers.info import Info
from dataintel.schema.auth import ApiKey, User
from dataintel.schema.commerce import Customer, Event, Order, OrderItem, Product
from dataintel.schema.jobs import Job
from dataintel.schema.node import Node

NODE_TYPES: dict[str, Callable[[Any], Node]] = {
    "Customer": Customer.from_record,
    "Product": Product.from_record,
    "Order": Order.from_record,
    "OrderItem": OrderItem.from_record,
    "Event": Event.from_record,
    "User": User.from_record,
    "ApiKey": ApiKey.from_record,
    "Job": Job.from_record,
}

_READ_AS = (
    " Readable exactly when the object's own root field is (Customer: customer, Product:"
    " product, Order and OrderItem: order, Event: events, User: user, ApiKey: apiKeys, Job:"
    " job): else null with that field's UNAUTHENTICATED or FORBIDDEN."
)


def _node(found: resolvers.FoundNode) -> Node:
    return NODE_TYPES[found.type_name](found.record)


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="The object with this global id; null when there is none. A malformed id"
        " is BAD_USER_INPUT." + _READ_AS,
        directives=[PUBLIC],
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        found = await resolvers.node(info, id)
        return _node(found) if found is not None else None

    @strawberry.field(
        description="The objects with these global ids, in the same order, loaded in batches;"
        " each is null when there is none, or with its error (BAD_USER_INPUT for a malformed"
        " id) at its index." + _READ_AS,
        directives=[PUBLIC, Cost(list_size_argument="ids")],
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(description="Global ids, at most the configured maximum."),
        ],
    ) -> list[Node | None]:
        found = await resolvers.nodes(info, ids)
        # An exception in a list makes graphql-core null that item with the error at its path.
        answers: list[Any] = [
            _node(item) if isinstance(item, resolvers.FoundNode) else item for item in found
        ]
        return answers
