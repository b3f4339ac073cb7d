"""Cursor connections (Relay's specification) shared by every paginated list.

Every connection field takes ``first``/``after`` to page forwards and ``last``/``before`` to
page backwards (both pairs at once select the items between the cursors, then the first
``first`` of them, then the last ``last`` of those), and answers ``edges { cursor node }``,
``nodes`` and ``pageInfo``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from dataintel.directives.cache_control import CacheControl
from dataintel.resolvers.freshness import watched
from dataintel.resolvers.info import Info
from dataintel.schema.made_once import MadeOnce
from dataintel.services.pagination import Keyset, Page, encode_cursor

Node = TypeVar("Node")
Record = TypeVar("Record")
# Wrappers take the cache policy of the field that returns them.
INHERITED_CACHE = [CacheControl(inherit_max_age=True)]


FirstArgument = Annotated[
    int | None,
    strawberry.argument(
        description="Items from the start (after `after`), at most the configured maximum;"
        " 20 when neither first nor last is given."
    ),
]
AfterArgument = Annotated[
    str | None,
    strawberry.argument(description="Only items after this cursor (the previous endCursor)."),
]
LastArgument = Annotated[
    int | None,
    strawberry.argument(
        description="Items from the end (before `before`), at most the configured maximum."
    ),
]
BeforeArgument = Annotated[
    str | None,
    strawberry.argument(description="Only items before this cursor (the previous startCursor)."),
]


@strawberry.type(description="Where a page sits in its list.", directives=INHERITED_CACHE)
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Whether more items follow this page; known when paging forwards with"
        " `first` (false when paging with `last` only)."
    )
    has_previous_page: bool = strawberry.field(
        description="Whether more items come before this page; known when paging backwards"
        " with `last` (false when paging with `first` only)."
    )
    start_cursor: str | None = strawberry.field(
        description="Pass as `before` to get the previous page; null on an empty page."
    )
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
    page: strawberry.Private[Page[Any]]
    node: strawberry.Private[Callable[[Any], Node]]
    keyset: strawberry.Private[Callable[[Any], Keyset]]
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    # Edges, cursors and nodes are made when asked for: a query of `nodes` makes no cursor.
    @strawberry.field(description="The items with their cursors.")
    def edges(self) -> list[Edge[Node]]:
        return [
            Edge(cursor=encode_cursor(self.keyset(record)), node=self.node(record))
            for record in self.page.items
        ]

    @strawberry.field(description="Whether and where the list goes on.")
    def page_info(self) -> PageInfo:
        items = self.page.items
        return PageInfo(
            has_next_page=self.page.has_next_page,
            has_previous_page=self.page.has_previous_page,
            start_cursor=encode_cursor(self.keyset(items[0])) if items else None,
            end_cursor=encode_cursor(self.keyset(items[-1])) if items else None,
        )

    @strawberry.field(
        description="Items in the whole filtered list (one count, when asked); null with"
        " DEPENDENCY_UNAVAILABLE or TIMEOUT when the count cannot be made."
    )
    async def total_count(self, info: Info) -> int | None:
        return await watched(info, self.count())

    @strawberry.field(description="The items, without cursors.")
    def nodes(self) -> list[Node]:
        node = self.node
        if isinstance(node, MadeOnce):
            return node.many(self.page.items)
        return [node(record) for record in self.page.items]

    @classmethod
    def from_page(
        cls,
        page: Page[Record],
        node: Callable[[Record], Node],
        keyset: Callable[[Record], Keyset],
        count: Callable[[], Awaitable[int]],
    ) -> Connection[Node]:
        """A connection over one page of service records."""
        return cls(page=page, node=node, keyset=keyset, count=count)
