"""Relay-style connections shared by every paginated list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from dataintel.directives.cache_control import CacheControl
from dataintel.resolvers.freshness import watched
from dataintel.resolvers.info import Info
from dataintel.services.pagination import Keyset, Page, encode_cursor

Node = TypeVar("Node")
Record = TypeVar("Record")
# Wrappers take the cache policy of the field that returns them.
INHERITED_CACHE = [CacheControl(inherit_max_age=True)]


@strawberry.type(description="Where a page sits in its list.", directives=INHERITED_CACHE)
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page.")
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null on an empty page."
    )


@strawberry.type(
    description="One item of a page and the cursor that points at it.", directives=INHERITED_CACHE
)
class Edge(Generic[Node]):
    cursor: str = strawberry.field(description="Opaque position of this item.")
    node: Node = strawberry.field(description="The item.")


@strawberry.type(
    description="A page of a list, with cursors to go on from.", directives=INHERITED_CACHE
)
class Connection(Generic[Node]):
    edges: list[Edge[Node]] = strawberry.field(description="The items with their cursors.")
    page_info: PageInfo = strawberry.field(description="Whether and where the list goes on.")
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(
        description="Items in the whole filtered list (one count, when asked); null with"
        " DEPENDENCY_UNAVAILABLE or TIMEOUT when the count cannot be made."
    )
    async def total_count(self, info: Info) -> int | None:
        return await watched(info, self.count())

    @strawberry.field(description="The items, without cursors.")
    def nodes(self) -> list[Node]:
        return [edge.node for edge in self.edges]

    @classmethod
    def from_page(
        cls,
        page: Page[Record],
        node: Callable[[Record], Node],
        keyset: Callable[[Record], Keyset],
        count: Callable[[], Awaitable[int]],
    ) -> Connection[Node]:
        """A connection over one page of service records."""
        edges: Sequence[Edge[Node]] = [
            Edge(cursor=encode_cursor(keyset(record)), node=node(record)) for record in page.items
        ]
        end = edges[-1].cursor if edges else None
        return cls(
            edges=list(edges),
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=end),
            count=count,
        )
