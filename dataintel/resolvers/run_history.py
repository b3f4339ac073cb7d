"""The history of a declared check or comparison: a page of its runs and their count."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from dataintel.resolvers.freshness import watched
from dataintel.resolvers.info import Info
from dataintel.services.pagination import Page, PageRequest

T = TypeVar("T")


class HistoryReader(Protocol[T]):
    """A service that pages and counts the runs of what it declares."""

    async def history(self, owner: str, page: PageRequest, /) -> Page[T]: ...

    async def count_history(self, owner: str, /) -> int: ...


async def history(
    info: Info, reader: HistoryReader[T], owner: str, page: PageRequest
) -> tuple[Page[T], Callable[[], Awaitable[int]]]:
    """A page of an owner's runs, newest first, and how to count them all."""
    found = await watched(info, reader.history(owner, page))
    return found, lambda: reader.count_history(owner)
