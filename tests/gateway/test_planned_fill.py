"""The planned executor's generated leaf fill: what the serializers answer, its stops."""

from __future__ import annotations

import enum
from types import SimpleNamespace
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLString,
)

from dataintel.gateway.planned.fill import UNREAD, make_fill
from dataintel.gateway.planned.leaves import serializer


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


TIER = GraphQLEnumType("Tier", {member.name: member for member in Tier})


class Source:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
        self.calls = 0

    def total(self) -> float:
        self.calls += 1
        return float(self.__dict__["cents"]) / 100


def _leaf(key: str, leaf_type: Any, *, nullable: bool = False, method: bool = False) -> Any:
    plan = SimpleNamespace(
        nullable=nullable, return_type=leaf_type if nullable else GraphQLNonNull(leaf_type)
    )
    read = Source.total if method else (lambda source, key=key: getattr(source, key))
    return (key, read, serializer(leaf_type), plan), None if method else key


def _fill(*leaves: Any) -> Any:
    return make_fill([leaf for leaf, _ in leaves], [attribute for _, attribute in leaves])


def test_a_fill_writes_what_each_serializer_answers() -> None:
    fill = _fill(
        _leaf("id", GraphQLID),
        _leaf("name", GraphQLString, nullable=True),
        _leaf("count", GraphQLInt),
        _leaf("ok", GraphQLBoolean),
        _leaf("total", GraphQLFloat, method=True),
        _leaf("tier", TIER),
    )
    source = Source(id=7, name=None, count=3, ok=True, cents=1250, tier=Tier.GOLD)
    target: dict[str, Any] = dict.fromkeys(("id", "name", "count", "ok", "total", "tier"))

    assert fill(source, target) is None
    # The id is an int: not taken as it is, serialized as graphql-core does (to "7").
    assert target == {
        "id": "7",
        "name": None,
        "count": 3,
        "ok": True,
        "total": 12.5,
        "tier": "GOLD",
    }
    assert source.calls == 1
    # The enum member is remembered: the second fill answers the same from the memo.
    again: dict[str, Any] = dict.fromkeys(target)
    assert fill(source, again) is None
    assert again == target


def test_a_fill_stops_where_the_executor_must_take_over() -> None:
    fill = _fill(
        _leaf("id", GraphQLID),
        _leaf("total", GraphQLFloat, method=True),
        _leaf("count", GraphQLInt),
    )
    target: dict[str, Any] = dict.fromkeys(("id", "total", "count"))

    # A null where none may be: the index and what was read, no error.
    assert fill(Source(id=None, cents=1, count=1), target) == (0, None, None)

    # A value the serializer refuses: the index and the value.
    stop = fill(Source(id="a", cents=1, count=2**40), target)
    assert stop == (2, 2**40, None)
    assert target["id"] == "a"
    assert target["total"] == 0.01

    # A read that raised: UNREAD and its error; the method ran once.
    broken = Source(id="b", count=1)
    stop = fill(broken, target)
    assert stop is not None
    index, value, error = stop
    assert (index, value) == (1, UNREAD)
    assert isinstance(error, KeyError)
    assert broken.calls == 1


def test_a_float_that_is_not_finite_goes_to_the_serializer() -> None:
    fill = _fill(_leaf("total", GraphQLFloat, method=True))
    stop = fill(Source(cents=float("nan")), {"total": None})
    assert stop is not None
    assert stop[0] == 0
    assert stop[1] != stop[1]
