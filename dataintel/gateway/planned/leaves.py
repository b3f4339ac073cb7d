"""Output coercion of scalars and enums, with graphql-core's results and its errors."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLString,
)
from graphql.pyutils import Undefined, inspect

_MAX_INT = 2**31 - 1
_MIN_INT = -(2**31)
_INF = float("inf")

ENUM_MEMBERS: WeakKeyDictionary[Callable[[Any], Any], dict[int, tuple[Any, Any]]] = (
    WeakKeyDictionary()
)
"""Each enum serializer's memo of Python enum members by identity (for generated code);
weak, so that the serializers of a schema no longer used (tests make many) are not kept."""


def coerce_leaf(leaf_type: GraphQLLeafType, value: Any) -> Any:
    """What graphql-core's completeLeafValue answers, raising its error when it would."""
    coerced = leaf_type.coerce_output_value(value)
    if coerced is Undefined or coerced is None:
        raise TypeError(
            f"Expected `{inspect(leaf_type)}.coerce_output_value({inspect(value)})`"
            f" to return non-nullable value, returned: {inspect(coerced)}"
        )
    return coerced


def serializer(leaf_type: GraphQLLeafType) -> Callable[[Any], Any]:
    """A coercion for one leaf type that skips the general path for the common values."""
    if leaf_type is GraphQLString or leaf_type is GraphQLID:

        def text(value: Any) -> Any:
            return value if type(value) is str else coerce_leaf(leaf_type, value)

        return text
    if leaf_type is GraphQLInt:

        def integer(value: Any) -> Any:
            if type(value) is int and _MIN_INT <= value <= _MAX_INT:
                return value
            return coerce_leaf(leaf_type, value)

        return integer
    if leaf_type is GraphQLBoolean:

        def boolean(value: Any) -> Any:
            return value if type(value) is bool else coerce_leaf(leaf_type, value)

        return boolean
    if leaf_type is GraphQLFloat:

        def real(value: Any) -> Any:
            if type(value) is float and value == value and abs(value) != _INF:
                return value
            return coerce_leaf(leaf_type, value)

        return real
    if isinstance(leaf_type, GraphQLEnumType):
        # An enum's coercion depends on the value only: remember it per value. Members of a
        # Python enum are remembered by identity (their __hash__ is a Python function).
        members: dict[int, tuple[Any, Any]] = {}
        known: dict[Any, Any] = {}

        def enum(value: Any) -> Any:
            member = members.get(id(value))
            if member is not None and member[0] is value:
                return member[1]
            if isinstance(value, Enum):
                coerced = coerce_leaf(leaf_type, value)
                members[id(value)] = (value, coerced)
                return coerced
            try:
                return known[value]
            except KeyError:
                coerced = known[value] = coerce_leaf(leaf_type, value)
                return coerced
            except TypeError:  # unhashable
                return coerce_leaf(leaf_type, value)

        ENUM_MEMBERS[enum] = members
        return enum

    def other(value: Any) -> Any:
        return coerce_leaf(leaf_type, value)

    return other


def accepts_as_is(leaf_type: GraphQLLeafType) -> str | None:
    """A Python condition on ``v`` under which the serializer gives ``v`` back unchanged.

    What the serializers above check first, written out for code generated per selection
    (gateway/planned/fill.py); None when no value is taken as it is.
    """
    if leaf_type is GraphQLString or leaf_type is GraphQLID:
        return "type(v) is str"
    if leaf_type is GraphQLInt:
        return f"type(v) is int and {_MIN_INT} <= v <= {_MAX_INT}"
    if leaf_type is GraphQLBoolean:
        return "type(v) is bool"
    if leaf_type is GraphQLFloat:
        # NaN fails both comparisons, infinities one: what ``real`` refuses.
        return "type(v) is float and -_INF < v < _INF"
    return None
