"""Loaders send at most max_batch_size keys per service call, however many are asked for."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from dataintel.loaders.batching import GroupedLoader, MappingLoader


async def test_a_mapping_loader_chunks_its_keys_at_the_batch_size() -> None:
    batches: list[list[int]] = []

    async def squares(keys: Sequence[int]) -> Mapping[int, int | None]:
        batches.append(list(keys))
        return {key: key * key for key in keys if key != 4}

    loader: MappingLoader[int, int | None] = MappingLoader(squares, lambda: None, max_batch_size=3)
    values = await loader.load_many(list(range(1, 8)))
    assert values == [1, 4, 9, None, 25, 36, 49]
    assert batches == [[1, 2, 3], [4, 5, 6], [7]]


async def test_a_grouped_loader_chunks_before_it_groups() -> None:
    calls: list[tuple[list[int], str]] = []

    async def labelled(ids: Sequence[int], label: str) -> Mapping[int, str]:
        calls.append((list(ids), label))
        return {key: f"{label}{key}" for key in ids}

    loader: GroupedLoader[int, str, str] = GroupedLoader(labelled, str, max_batch_size=2)
    keys = [(1, "a"), (2, "a"), (3, "b"), (4, "a")]
    values = await asyncio.gather(*(loader.load(key) for key in keys))
    assert values == ["a1", "a2", "b3", "a4"]
    # Two batches of at most two keys; within the first, one call per label.
    assert calls == [([1, 2], "a"), ([3], "b"), ([4], "a")]
