"""The ``history`` connection of a declared check or comparison: its runs, newest first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from dataintel.resolvers.commerce import page_request
from dataintel.resolvers.info import Info
from dataintel.schema.pagination import Connection
from dataintel.services.pagination import Keyset, Page, PageRequest


class _Run(Protocol):
    @property
    def id(self) -> int: ...


Run = TypeVar("Run", bound=_Run)
Node = TypeVar("Node")
HistoryResolver = Callable[
    [Info, str, PageRequest], Awaitable[tuple[Page[Run], Callable[[], Awaitable[int]]]]
]


def _keyset(run: _Run) -> Keyset:
    return (run.id,)


async def history_connection(
    info: Info,
    resolve: HistoryResolver[Run],
    owner: str,
    node: Callable[[Run], Node],
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Node]:
    """A page of an owner's runs (first/after, last/before) as a connection."""
    page = page_request(info, first, after, last, before)
    found, count = await resolve(info, owner, page)
    return Connection.from_page(found, node, _keyset, count)
