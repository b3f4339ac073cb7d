"""The Node interface of Relay's Global Object Identification, implemented by every entity."""

from __future__ import annotations

import strawberry

from dataintel.resolvers.global_ids import encode_global_id


@strawberry.interface(
    description="An object with a global id: refetch it with `node(id:)`; clients cache it by"
    " `id` (see docs/clients.md)."
)
class Node:
    id: strawberry.ID = strawberry.field(
        description="Its global id: opaque, unique across every type, stable (see"
        " docs/clients.md). The plain key is `databaseId`."
    )


def global_id(type_name: str, key: int | str) -> strawberry.ID:
    """The ``id`` of an object of the named type."""
    return strawberry.ID(encode_global_id(type_name, key))
