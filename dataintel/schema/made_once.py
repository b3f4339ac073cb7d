"""Schema objects made from service records once per record object, not once per request.

While an entry lives in the in-process cache, every request gets the very same record
objects, so a page of 50 orders asked for a thousand times a second would otherwise become
the same 50 Strawberry objects fifty thousand times a second (global ids, enums and all).
Making one from a frozen record is a pure function of the record, so the result is kept by
the record's identity; the record is kept with it, so its identity cannot be reused while it
is remembered. Records read afresh (cache off) pass through for the price of one lookup, and
at most ``size`` are remembered per kind.

Objects made from records are shared by every request that reads those records: nothing
may change them after they are made (no resolver does; they are answers, not state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")
T = TypeVar("T")

DEFAULT_SIZE = 8192


class MadeOnce(Generic[R, T]):
    """``make(record)``, remembered per record object."""

    __slots__ = ("_made", "_make", "_size")

    def __init__(self, make: Callable[[R], T], size: int = DEFAULT_SIZE) -> None:
        self._make = make
        self._size = size
        self._made: dict[int, tuple[R, T]] = {}

    def __call__(self, record: R) -> T:
        made = self._made.get(id(record))
        if made is not None and made[0] is record:
            return made[1]
        value = self._make(record)
        if len(self._made) >= self._size:
            # Cheaper than least-recently-used bookkeeping on every hit; a cache that holds
            # more than `size` live records of one kind pays one rebuild per record.
            self._made.clear()
        self._made[id(record)] = (record, value)
        return value

    def optional(self, record: R | None) -> T | None:
        """``self(record)``, and None for None (written out: it runs once per loaded key)."""
        if record is None:
            return None
        made = self._made.get(id(record))
        if made is not None and made[0] is record:
            return made[1]
        return self(record)
