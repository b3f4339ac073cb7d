"""A labelled Counter's or Histogram's values as items of a plain list the gateway adds to.

prometheus_client keeps each value of a child behind its own lock (``MutexValue.inc``), and a
response-cache hit added to seven of them, each a method call and a lock. The gateway's
per-request series are counted in the event loop's thread only, so their values can be the
items of a list added to in place (``cells[0] += 1``): the child's values are replaced by views
of those items, and the registry reads them through the same ``get`` as ever. The exposition
(names, labels, HELP, buckets, ``_created``) is prometheus_client's own, unchanged.

In multiprocess mode a value is a slot of this process's file, which the other workers read
when they answer a scrape: the list is then a view the other way round, each item read and
written through the value (``ValueCells``).
"""

from __future__ import annotations

from collections.abc import MutableSequence
from typing import Any

from prometheus_client.values import MutexValue

Cells = MutableSequence[float]
"""A child's values in order: a Counter's one; a Histogram's sum, then its buckets'."""


class CellValue:
    """A ``MutexValue`` that is one item of a list: what the registry reads and what
    ``inc`` and ``set`` add to (tests and other callers of the public methods)."""

    __slots__ = ("_cells", "_exemplar", "_index")

    def __init__(self, cells: list[float], index: int) -> None:
        self._cells = cells
        self._index = index
        self._exemplar: Any = None

    @property
    def cells(self) -> list[float]:
        """The list this value is an item of."""
        return self._cells

    def inc(self, amount: float) -> None:
        """Adds ``amount``."""
        self._cells[self._index] += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        """Sets the value."""
        self._cells[self._index] = value

    def set_exemplar(self, exemplar: Any) -> None:
        """Keeps the exemplar, as MutexValue does."""
        self._exemplar = exemplar

    def get(self) -> float:
        """The value now."""
        return self._cells[self._index]

    def get_exemplar(self) -> Any:
        """The exemplar last set."""
        return self._exemplar


class ValueCells(MutableSequence[float]):
    """Values that must stay where prometheus_client keeps them (a multiprocess file's
    slots) as a list: an item read is the value's ``get``, an item written its ``set``."""

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def __getitem__(self, index: Any) -> Any:
        return self._values[index].get()

    def __setitem__(self, index: Any, value: Any) -> None:
        self._values[index].set(value)

    def __delitem__(self, index: Any) -> None:
        raise TypeError("a child's values are fixed")

    def __len__(self) -> int:
        return len(self._values)

    def insert(self, index: int, value: float) -> None:
        """Not allowed: a child's values are fixed."""
        raise TypeError("a child's values are fixed")


class PublicCells(MutableSequence[float]):
    """A child whose values are not where this prometheus_client version was known to keep
    them: each item reads 0 and each write is handed to the child's public method, so
    ``cells[0] += amount`` is ``inc(amount)`` (a Counter) or ``observe(amount)`` (a
    Histogram, whose bucket writes that follow are then ignored). Slower, never wrong."""

    def __init__(self, record: Any) -> None:
        self._record = record

    def __getitem__(self, index: Any) -> Any:
        return 0.0

    def __setitem__(self, index: Any, value: Any) -> None:
        if index == 0:
            self._record(value)

    def __delitem__(self, index: Any) -> None:
        raise TypeError("a child's values are fixed")

    def __len__(self) -> int:
        return 1

    def insert(self, index: int, value: float) -> None:
        """Not allowed: a child's values are fixed."""
        raise TypeError("a child's values are fixed")


def counter_cells(child: Any) -> Cells:
    """A labelled Counter child's value as ``cells[0]``."""
    value: Any = getattr(child, "_value", None)
    if value is None:
        return PublicCells(child.inc)
    if type(value) is CellValue:
        # Made before for another key sharing this child (a route's GET and POST).
        return value.cells
    if type(value) is not MutexValue:
        return ValueCells([value])
    cells: list[float] = [child._value.get()]
    child._value = CellValue(cells, 0)
    return cells


def histogram_cells(child: Any, bounds: tuple[float, ...]) -> Cells:
    """A labelled Histogram child's sum as ``cells[0]`` and its buckets' counts (not
    cumulative, as the child keeps them) as ``cells[1:]``; ``bounds`` are its upper bounds,
    +Inf the last, which the caller bisects."""
    if not all(hasattr(child, name) for name in ("_upper_bounds", "_sum", "_buckets")):
        return PublicCells(child.observe)
    if tuple(child._upper_bounds) != bounds:
        raise ValueError(f"the histogram's buckets are {child._upper_bounds}, not {bounds}")
    if type(child._sum) is CellValue:
        # Made before for another key sharing this child (a route's GET and POST).
        made: list[float] = child._sum.cells
        return made
    values: list[Any] = [child._sum, *child._buckets]
    if any(type(value) is not MutexValue for value in values):
        return ValueCells(values)
    cells: list[float] = [value.get() for value in values]
    child._sum = CellValue(cells, 0)
    child._buckets = [CellValue(cells, index) for index in range(1, len(cells))]
    return cells
