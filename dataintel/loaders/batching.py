"""Typed aiodataloader subclasses that turn one batch of keys into one service call."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

from aiodataloader import DataLoader

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
V = TypeVar("V")


class MappingLoader(DataLoader[K, V], Generic[K, V]):
    """Loads by key through a batch call answering a mapping; a key it lacks gets ``missing``."""

    def __init__(
        self,
        fetch: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]],
        missing: Callable[[], V],
        *,
        max_batch_size: int,
        batch: bool = True,
    ) -> None:
        self._fetch = fetch
        self._missing = missing
        super().__init__(max_batch_size=max_batch_size, batch=batch)

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        found = await self._fetch(keys)
        return [found[key] if key in found else self._missing() for key in keys]


class GroupedLoader(DataLoader[tuple[K, G], V], Generic[K, G, V]):
    """Keys are (id, arguments): one service call per distinct arguments, all ids at once."""

    def __init__(
        self,
        fetch: Callable[[Sequence[K], G], Awaitable[Mapping[K, V]]],
        missing: Callable[[], V],
        *,
        max_batch_size: int,
        batch: bool = True,
    ) -> None:
        self._fetch = fetch
        self._missing = missing
        super().__init__(max_batch_size=max_batch_size, batch=batch)

    async def batch_load_fn(self, keys: list[tuple[K, G]]) -> list[V]:
        ids_by_group: defaultdict[G, list[K]] = defaultdict(list)
        for key_id, group in keys:
            ids_by_group[group].append(key_id)
        groups = list(ids_by_group)
        answers = await asyncio.gather(*(self._fetch(ids_by_group[g], g) for g in groups))
        found = dict(zip(groups, answers, strict=True))
        return [
            found[group][key_id] if key_id in found[group] else self._missing()
            for key_id, group in keys
        ]
