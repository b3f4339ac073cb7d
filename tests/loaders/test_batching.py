"""Loaders send at most max_batch_size keys per service call, however many are asked for;
``load_all`` loads a list of keys through the same memo with one call per chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from dataintel.cache import PartialResult
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


class Squares:
    """A batch function that records its calls; 4 is missing, 13 fails alone."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.down = False

    async def __call__(self, keys: Sequence[int]) -> Mapping[int, int | None]:
        self.batches.append(list(keys))
        if self.down:
            raise ConnectionError("store down")
        found = {key: key * key for key in keys if key not in (4, 13)}
        if 13 in keys:
            raise PartialResult(found, {13: LookupError("13 failed")})
        return found


def squares_loader(
    fetch: Squares, *, size: int = 100, batch: bool = True
) -> MappingLoader[int, int | None]:
    loader: MappingLoader[int, int | None] = MappingLoader(
        fetch, lambda: None, max_batch_size=size, batch=batch
    )
    return loader


async def test_load_all_answers_in_key_order_with_one_call_per_chunk() -> None:
    fetch = Squares()
    loader = squares_loader(fetch, size=3)
    values = await loader.load_all([5, 1, 5, 2, 3, 4, 1])
    assert values == [25, 1, 25, 4, 9, None, 1]
    # Each distinct key once, at most three per call.
    assert fetch.batches == [[5, 1, 2], [3, 4]]


async def test_load_all_and_load_share_one_memo() -> None:
    fetch = Squares()
    loader = squares_loader(fetch)
    assert await loader.load(2) == 4
    assert await loader.load_all([2, 3]) == [4, 9]
    assert await loader.load(3) == 9
    assert await loader.load_all([3, 2]) == [9, 4]
    assert fetch.batches == [[2], [3]]


async def test_load_all_gives_a_failed_key_its_own_error() -> None:
    loader = squares_loader(Squares())
    first, failed, missing = await loader.load_all([1, 13, 4])
    assert (first, missing) == (1, None)
    assert isinstance(failed, LookupError)
    # The key's error is remembered, as load() remembers a rejected future.
    with pytest.raises(LookupError):
        await loader.load(13)


async def test_a_whole_batch_failing_is_not_remembered() -> None:
    fetch = Squares()
    loader = squares_loader(fetch)
    fetch.down = True
    outcomes = await loader.load_all([1, 2])
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    fetch.down = False
    assert await loader.load_all([1, 2]) == [1, 4]
    assert fetch.batches == [[1, 2], [1, 2]]


async def test_load_all_without_batching_loads_each_key_alone() -> None:
    fetch = Squares()
    loader = squares_loader(fetch, batch=False)
    assert await loader.load_all([1, 2, 1]) == [1, 4, 1]
    assert sorted(fetch.batches) == [[1], [2]]


async def test_concurrent_load_alls_load_a_key_once() -> None:
    fetch = Squares()
    loader = squares_loader(fetch)
    first, second = await asyncio.gather(loader.load_all([1, 2]), loader.load_all([2, 3]))
    assert (first, second) == ([1, 4], [4, 9])
    assert fetch.batches == [[1, 2], [3]]


async def test_a_cancelled_load_all_leaves_no_load_waiting_on_its_keys() -> None:
    started = asyncio.Event()

    async def slow(keys: Sequence[int]) -> Mapping[int, int]:
        started.set()
        await asyncio.sleep(3600)
        return {key: key for key in keys}

    loader: MappingLoader[int, int | None] = MappingLoader(slow, lambda: None, max_batch_size=10)
    first = asyncio.ensure_future(loader.load_all([1, 2]))
    await started.wait()
    second = asyncio.ensure_future(loader.load_all([2]))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # The one waiting on the cancelled chunk is told, as it was when chunks were tasks.
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(second, 5)


class SlowSquares(Squares):
    """Squares that answer a loop iteration later: a second load_all meets keys in flight."""

    async def __call__(self, keys: Sequence[int]) -> Mapping[int, int | None]:
        self.batches.append(list(keys))
        await asyncio.sleep(0)
        return {key: key * key for key in keys}


async def test_keys_in_flight_are_waited_for_not_loaded_again() -> None:
    fetch = SlowSquares()
    loader: MappingLoader[int, int | None] = MappingLoader(fetch, lambda: None, max_batch_size=10)
    # One chunk (with a key asked twice), then one of its keys and a new one meanwhile.
    first, second = await asyncio.gather(loader.load_all([1, 2, 2]), loader.load_all([2, 3]))
    assert (first, second) == ([1, 4, 4], [4, 9])
    assert fetch.batches == [[1, 2], [3]]
    assert not loader._settling


async def test_keys_in_flight_in_several_chunks_are_waited_for() -> None:
    fetch = SlowSquares()
    loader: MappingLoader[int, int | None] = MappingLoader(fetch, lambda: None, max_batch_size=2)
    first, second = await asyncio.gather(loader.load_all([1, 2, 3]), loader.load_all([3, 4, 1]))
    assert (first, second) == ([1, 4, 9], [9, 16, 1])
    assert sorted(fetch.batches) == [[1, 2], [3], [4]]
    assert not loader._settling
