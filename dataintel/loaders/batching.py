"""Typed aiodataloader subclasses that turn one batch of keys into one service call.

Two ways in: ``load(key)``, a future per key that aiodataloader batches with every other
``load`` of the same loop iteration (graphql-core's resolvers), and ``load_all(keys)``, one
batch call for a whole list of keys with no future per key (the planned executor, which
collects a level's keys itself). Both share one memo per request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Container, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from aiodataloader import DataLoader

from dataintel.cache import PartialResult, StaleRead, observe
from dataintel.observability.metrics import loader_batch

K = TypeVar("K", bound=Hashable)
G = TypeVar("G", bound=Hashable)
V = TypeVar("V")


_UNSETTLED: Any = object()


class BatchLoader(DataLoader[K, V], Generic[K, V]):
    """A DataLoader whose keys can also be loaded a whole list at a time (``load_all``)."""

    def __init__(self, *, max_batch_size: int, batch: bool) -> None:
        # aiodataloader's own __init__ checks that batch_load_fn is a coroutine function
        # through inspect, which costs more than the rest of a small request's loading; it
        # is one, by definition, in every subclass here.
        self.loop = asyncio.get_running_loop()
        self.batch = batch
        self.max_batch_size = max_batch_size
        self._chunk_size = max_batch_size if batch else 1
        self.cache = True
        self._cache = {}
        self._queue = []
        self._settled: dict[K, V | Exception] = {}
        """Outcomes of load_all, by key (a value, or the error of that key alone)."""
        self._settling: list[tuple[Container[K], asyncio.Future[dict[K, Exception]]]] = []
        """The chunks being loaded by load_all, each its keys and what it will answer: a
        chunk, not a key, is registered (a request has one or two at a time, and a key
        registered and removed one by one cost two passes over every chunk)."""

    def get_cache_key(self, key: K) -> K:
        return key

    def load(self, key: K) -> asyncio.Future[V]:
        settled = self._settled.get(key, _UNSETTLED)
        if settled is not _UNSETTLED and key not in self._cache:
            future = self._cache[key] = self.loop.create_future()
            if isinstance(settled, Exception):
                future.set_exception(settled)
            else:
                future.set_result(settled)
            return future
        return super().load(key)

    async def load_all(self, keys: Sequence[K]) -> list[V | Exception]:
        """Each key's value, or the error that key failed with, in the order of ``keys``.

        Keys already loaded in this request come from the memo; the others are loaded in one
        call of ``batch_load_fn`` per ``max_batch_size`` keys (one per key when batching is
        off), as ``load`` would.
        """
        settled = self._settled
        missing: list[K] = []
        chunks_under_way: set[asyncio.Future[dict[K, Exception]]] = set()
        unique = dict.fromkeys(keys)
        members: Container[K] = unique
        if not settled and not self._settling and not self._cache:
            # Nothing loaded yet in this request (the usual first level): every key is
            # missing, without three lookups per key to find it out.
            missing = list(unique)
            keys_to_check: Iterable[K] = ()
        else:
            keys_to_check = unique
        for key in keys_to_check:
            if key in settled:
                continue
            under_way = self._under_way(key)
            if under_way is not None:
                chunks_under_way.add(under_way)
                continue
            future = self._cache.get(key)
            if future is None:
                missing.append(key)
                continue
            # Loaded, or being loaded, through load(): its future has the outcome.
            try:
                settled[key] = await future
            except Exception as error:
                settled[key] = error
        failed: dict[K, Exception] = {}
        if missing and len(missing) <= self._chunk_size:
            # One chunk: loaded here, without a task and the loop iteration it waits for;
            # a concurrent load_all of the same keys waits on the future as on a task.
            own: asyncio.Future[dict[K, Exception]] = self.loop.create_future()
            if len(missing) != len(unique):
                members = frozenset(missing)
            self._settling.append((members, own))
            try:
                outcome = await self._settle(missing, members)
            except BaseException:
                own.cancel()
                raise
            own.set_result(outcome)
            failed.update(outcome)
        elif missing:
            size = self._chunk_size
            for start in range(0, len(missing), size):
                chunk = missing[start : start + size]
                chunk_members = frozenset(chunk)
                settling: asyncio.Future[dict[K, Exception]] = asyncio.ensure_future(
                    self._settle(chunk, chunk_members)
                )
                chunks_under_way.add(settling)
                self._settling.append((chunk_members, settling))
        for settling in chunks_under_way:
            failed.update(await settling)
        if not failed:
            return list(map(settled.__getitem__, keys))
        return [failed[key] if key in failed else settled[key] for key in keys]

    def _under_way(self, key: K) -> asyncio.Future[dict[K, Exception]] | None:
        """What the chunk loading the key will answer, when one is."""
        for members, settling in self._settling:
            if key in members:
                return settling
        return None

    async def _settle(self, keys: list[K], members: Container[K]) -> dict[K, Exception]:
        """Loads one chunk (registered under ``members``) into the memo; a whole batch that
        fails is not remembered."""
        try:
            values = await self.batch_load_fn(keys)
        except Exception as error:
            return dict.fromkeys(keys, error)
        else:
            self._settled.update(zip(keys, values, strict=True))
            return {}
        finally:
            settling = self._settling
            for index, (registered, _) in enumerate(settling):
                if registered is members:
                    del settling[index]
                    break


class MappingLoader(BatchLoader[K, V], Generic[K, V]):
    """Loads by key through a batch call answering a mapping; a key it lacks gets ``missing``.

    A batch that is partly served (PartialResult) fails only the keys that failed; a value
    served stale from cache is remembered per key for the resolver to report.
    """

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
        self.name: str = getattr(fetch, "__name__", type(self).__name__)
        """What the loader loads (its batch function's name): the metrics' and spans' label."""
        self._stale: dict[K, StaleRead] = {}
        super().__init__(max_batch_size=max_batch_size, batch=batch)

    def stale_read(self, key: K) -> StaleRead | None:
        """How stale the value loaded for the key was, when it came from cache past its TTL."""
        return self._stale.get(key) if self._stale else None

    def stale_reads(self) -> Mapping[K, StaleRead]:
        """Every key whose value came from cache past its TTL, so far."""
        return self._stale

    async def batch_load_fn(self, keys: list[K]) -> list[V]:
        failed: Mapping[K, Exception] = {}
        with loader_batch(self.name, len(keys)), observe() as seen:
            try:
                found = await self._fetch(keys)
            except PartialResult as partial:
                found, failed = partial.found, partial.failed
        self._stale.update(cast(Mapping[K, StaleRead], seen.by_key))
        return _values(_outcomes(keys, found, failed, self._missing))


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
        self.name: str = getattr(fetch, "__name__", type(self).__name__)
        """What the loader loads (its batch function's name): the metrics' and spans' label."""
        self._stale: dict[tuple[K, G], StaleRead] = {}
        super().__init__(max_batch_size=max_batch_size, batch=batch)

    def stale_read(self, key: tuple[K, G]) -> StaleRead | None:
        """How stale the value loaded for the key was, when it came from cache past its TTL."""
        return self._stale.get(key) if self._stale else None

    def stale_reads(self) -> Mapping[tuple[K, G], StaleRead]:
        """Every key whose value came from cache past its TTL, so far."""
        return self._stale

    async def batch_load_fn(self, keys: list[tuple[K, G]]) -> list[V]:
        ids_by_group: defaultdict[G, list[K]] = defaultdict(list)
        for key_id, group in keys:
            ids_by_group[group].append(key_id)
        groups = list(ids_by_group)
        with loader_batch(self.name, len(keys)):
            answers = await asyncio.gather(*(self._group(ids_by_group[g], g) for g in groups))
        outcomes: dict[tuple[K, G], V | Exception] = {}
        for group, (found, failed) in zip(groups, answers, strict=True):
            ids = ids_by_group[group]
            for key_id, outcome in zip(
                ids, _outcomes(ids, found, failed, self._missing), strict=True
            ):
                outcomes[(key_id, group)] = outcome
        return _values([outcomes[key] for key in keys])

    async def _group(
        self, ids: Sequence[K], group: G
    ) -> tuple[Mapping[K, V], Mapping[K, Exception]]:
        # One group failing (its arguments, its dependency) fails only its own keys.
        with observe() as seen:
            try:
                return await self._fetch(ids, group), {}
            except PartialResult as partial:
                return partial.found, partial.failed
            except Exception as error:
                return {}, dict.fromkeys(ids, error)
            finally:
                for key_id, read in cast(Mapping[K, StaleRead], seen.by_key).items():
                    self._stale[(key_id, group)] = read


def _values(outcomes: list[V | Exception]) -> list[V]:
    # aiodataloader rejects the future of a key whose value is an Exception.
    return cast(list[V], outcomes)


def _outcomes(
    keys: Sequence[K],
    found: Mapping[K, V],
    failed: Mapping[K, Exception],
    missing: Callable[[], V],
) -> list[V | Exception]:
    """Each key's value, its own error (which aiodataloader raises for it), or ``missing``."""
    if not failed and type(found) is dict:
        try:
            # Every key found (a warm batch): one pass in C (a plain dict: no __missing__).
            return list(map(found.__getitem__, keys))
        except KeyError:
            pass
    return [
        found[key] if key in found else failed[key] if key in failed else missing() for key in keys
    ]
