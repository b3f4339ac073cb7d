"""Schema objects made from service records once per record object, not once per request.

While an entry lives in the in-process cache, every request gets the very same record
objects, so a page of 50 orders asked for a thousand times a second would otherwise become
the same 50 Strawberry objects fifty thousand times a second (global ids, enums and all).
Making one from a frozen record is a pure function of the record, so the result is kept for
as long as the record object lives, by the record's identity, through a weak reference: a
record read afresh for one request (cache off) takes its object with it when it goes, and
nothing outlives the cache entries it was made from. At most ``size`` are kept per kind.

Objects made from records are shared by every request that reads those records: nothing
may change them after they are made (no resolver does; they are answers, not state), and
their synchronous fields of the object alone (``Order.total``) are pure functions of it.
So what is derived from a made object alone can be kept with it too: ``results_of`` gives
each made object's own small memo (the planned executor keeps there the scalar fields it
completed for a selection), dropped when the object's entry is.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

R = TypeVar("R")
T = TypeVar("T")

DEFAULT_SIZE = 8192

_RESULTS: dict[int, dict[Any, Any]] = {}
"""Each made object's memo, by the object's identity, while a MadeOnce entry holds it (so
the identity cannot be another object's)."""

results_of: Callable[[int], dict[Any, Any] | None] = _RESULTS.get
"""The memo of the object of this ``id()``, None when it is not a made object."""

memo_of: Callable[[int], dict[Any, Any]] = _RESULTS.__getitem__
"""The memo of the object of this ``id()``; KeyError when it is not a made object."""


class _Held(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to a record that knows the key its object is kept under."""

    __slots__ = ("key",)
    key: int


class MadeOnce(Generic[R, T]):
    """``make(record)``, remembered while the record object lives (it must be weakly
    referenceable: the records are ``weakref_slot`` dataclasses)."""

    __slots__ = ("__weakref__", "_forget", "_made", "_make", "_size")

    def __init__(self, make: Callable[[R], T], size: int = DEFAULT_SIZE) -> None:
        self._make = make
        self._size = size
        self._made: dict[int, tuple[_Held, T]] = {}
        made = self._made

        def forget(held: _Held) -> None:
            entry = made.pop(held.key, None)
            if entry is not None:
                _RESULTS.pop(id(entry[1]), None)

        self._forget = forget

    def __call__(self, record: R) -> T:
        made = self._made.get(id(record))
        if made is not None and made[0]() is record:
            return made[1]
        value = self._make(record)
        if len(self._made) >= self._size:
            # Cheaper than least-recently-used bookkeeping on every hit; a cache that holds
            # more than `size` live records of one kind pays one rebuild per record.
            for _, gone in self._made.values():
                _RESULTS.pop(id(gone), None)
            self._made.clear()
        held = _Held(record, self._forget)
        held.key = id(record)
        replaced = self._made.get(held.key)
        if replaced is not None:
            # A dead record's entry whose callback has not run yet: its object goes now.
            _RESULTS.pop(id(replaced[1]), None)
        self._made[held.key] = (held, value)
        _RESULTS[id(value)] = {}
        return value

    def optional(self, record: R | None) -> T | None:
        """``self(record)``, and None for None (written out: it runs once per loaded key)."""
        if record is None:
            return None
        made = self._made.get(id(record))
        if made is not None and made[0]() is record:
            return made[1]
        return self(record)

    def made(self, records: Sequence[R | None]) -> list[T] | None:
        """The objects already made of every one of ``records``; None when one is not made
        yet (or is not a record: None, an error), with nothing made."""
        made = self._made.get
        answer: list[T] = []
        for record in records:
            found = made(id(record))
            if found is None or found[0]() is not record:
                return None
            answer.append(found[1])
        return answer

    def many(self, records: Iterable[R]) -> list[T]:
        """``[self(record) for record in records]``, with no call per record already made
        (a page's nodes: one list per request, the records shared)."""
        made = self._made.get
        answer: list[T] = []
        for record in records:
            found = made(id(record))
            answer.append(found[1] if found is not None and found[0]() is record else self(record))
        return answer

    def __len__(self) -> int:
        return len(self._made)
