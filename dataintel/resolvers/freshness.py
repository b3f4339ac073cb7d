"""Reports, in the response's extensions, which paths came from cache past their TTL.

Services and loaders know keys, not GraphQL paths: they say a value was stale (see
dataintel.cache.freshness) and the resolver that awaited it adds its own path here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol, TypeVar, cast

from dataintel.cache import StaleRead, observe, report_stale
from dataintel.context import RequestContext
from dataintel.resolvers.info import Info

K = TypeVar("K")
T = TypeVar("T")
K_contra = TypeVar("K_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)
MAX_STALE_PATHS = 100
"""Paths listed at most; the count of the others is given as ``omitted``."""


class StaleAwareLoader(Protocol[K_contra, T_co]):
    """A loader that remembers which keys it served stale (see loaders/batching)."""

    def load(self, key: K_contra) -> Awaitable[T_co]: ...

    def stale_read(self, key: K_contra) -> StaleRead | None: ...


async def load(info: Info, loader: StaleAwareLoader[K, T], key: K) -> T:
    """``loader.load(key)``, reporting the field's path when the value was stale."""
    value = await loader.load(key)
    mark_stale(info, loader.stale_read(key))
    return value


async def report_from(loader: StaleAwareLoader[K, T], key: K) -> T:
    """``loader.load(key)``, reporting a stale value to the enclosing ``watched`` read."""
    value = await loader.load(key)
    read = loader.stale_read(key)
    if read is not None:
        report_stale(read)
    return value


async def watched(info: Info, read: Awaitable[T]) -> T:
    """Awaits a service read, reporting the field's path when it was served stale."""
    with observe() as seen:
        value = await read
    mark_stale(info, seen.oldest)
    return value


def mark_stale(info: Info, read: StaleRead | None, suffix: Sequence[str | int] = ()) -> None:
    """Adds the field's path (and suffix) to ``extensions.cache.stale`` when read is stale."""
    if read is None:
        return
    mark_stale_at(info.context, [*info.path.as_list(), *suffix], read)


def mark_stale_at(context: RequestContext, path: list[str | int], read: StaleRead) -> None:
    """Adds a path to ``extensions.cache.stale``: what ``mark_stale`` does, given the path."""
    report = cast(
        dict[str, Any],
        context.response_extensions.setdefault("cache", {"stale": []}),
    )
    stale: list[dict[str, Any]] = report.setdefault("stale", [])
    if len(stale) >= MAX_STALE_PATHS:
        report["omitted"] = report.get("omitted", 0) + 1
        return
    stale.append(
        {
            "path": path,
            "ageSeconds": read.age_seconds,
            "code": read.code,
            "dependency": read.dependency,
        }
    )
