"""A selection's scalar fields completed once per shared object, not once per request.

Objects made from cached records (schema/made_once.py) are the very same objects request
after request while their records live, and their scalar fields are pure functions of them.
So the result a selection's fill made from one, when it stopped at nothing (no error, no
null where none may be, no value the executor had to look at), is kept in the object's
memo under the selection; the next request copies it (one C call) instead of reading and
serializing every field again, and a page whose every object has it kept is completed with
no Python frame per object (``kept_many``). Only results whose values are all immutable are
kept (a copy shares them), and at most ``PER_OBJECT`` selections per object: a memo goes
with its object's entry, so nothing is kept longer than the records it was made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from dataintel.schema.made_once import memo_of, results_of

PER_OBJECT = 8
"""Selections kept per object at most (then forgotten all at once)."""

_IMMUTABLE = frozenset({int, float, str, bool, type(None)})


def keep(source: Any, selection: object, target: dict[str, Any]) -> None:
    """Keeps ``target`` (a selection's fill of ``source``, stopped at nothing, nothing else
    set in it yet) when ``source`` is a made object."""
    memo = results_of(id(source))
    if memo is None or selection in memo:
        return
    for value in target.values():
        if type(value) not in _IMMUTABLE:
            return
    if len(memo) >= PER_OBJECT:
        memo.clear()
    memo[selection] = target.copy()


def kept_many(sources: Sequence[Any], selection: object) -> list[dict[str, Any]] | None:
    """A fresh copy of the kept fill of each of ``sources``, in one pass in C; None when one
    has none kept (then nothing is copied)."""
    try:
        return list(map(dict.copy, map(itemgetter(selection), map(memo_of, map(id, sources)))))
    except KeyError:
        return None
