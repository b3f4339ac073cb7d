"""Turns cached values into bytes and back, for Redis and for the in-process byte budget.

Only registered record types are rebuilt on the way back (no pickle: whoever can write to
Redis must not be able to run code in the gateway). The codec's version is a digest of the
registered types' fields, so that a release that changes a record reads none of the entries
an older release wrote.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

import orjson

_TYPE = "$"
_FIELDS = "f"


class CodecError(ValueError):
    """A value the codec cannot write, or bytes it cannot read back."""


class ValueCodec(Protocol):
    """Bytes for a value and the value for its bytes."""

    @property
    def version(self) -> str: ...

    def encode(self, value: object) -> bytes: ...

    def decode(self, data: bytes) -> object: ...


class JsonCodec:
    """Plain JSON values (dicts, lists, strings, numbers): GraphQL response bodies."""

    version = "json1"

    def encode(self, value: object) -> bytes:
        """The JSON text of the value."""
        return orjson.dumps(value)

    def decode(self, data: bytes) -> object:
        """The value of a JSON text."""
        return orjson.loads(data)


class RecordCodec:
    """Frozen dataclasses, enums, tuples, mappings, datetimes and numbers, as tagged JSON."""

    def __init__(self, types: Iterable[type]) -> None:
        self._types: dict[str, type] = {}
        for kind in types:
            if not (dataclasses.is_dataclass(kind) or issubclass(kind, enum.Enum)):
                raise TypeError(f"{kind.__qualname__} is neither a dataclass nor an enum")
            known = self._types.setdefault(kind.__qualname__, kind)
            if known is not kind:
                raise TypeError(f"two registered types are named {kind.__qualname__}")
        signature = ";".join(_signature(kind) for _, kind in sorted(self._types.items()))
        self._version = "rec-" + hashlib.sha256(signature.encode()).hexdigest()[:12]
        self._encoders: dict[type, Callable[[Any], Any]] = {
            type(None): _same,
            bool: _same,
            int: _same,
            str: _same,
            float: _float,
            datetime: lambda value: {_TYPE: "dt", "v": value.isoformat()},
            date: lambda value: {_TYPE: "date", "v": value.isoformat()},
            timedelta: lambda value: {
                _TYPE: "td",
                "v": [value.days, value.seconds, value.microseconds],
            },
            Decimal: lambda value: {_TYPE: "dec", "v": str(value)},
            Fraction: lambda value: {_TYPE: "frac", "v": [value.numerator, value.denominator]},
            tuple: self._sequence,
            list: self._sequence,
            dict: self._mapping,
        }

    @property
    def version(self) -> str:
        """Changes whenever a registered type gains, loses or renames a field or member."""
        return self._version

    def encode(self, value: object) -> bytes:
        """The bytes of a value; CodecError for a type that is not registered."""
        return orjson.dumps(self._tree(value))

    def decode(self, data: bytes) -> object:
        """The value of bytes this codec wrote; CodecError when they do not fit."""
        try:
            return self._value(orjson.loads(data))
        except (TypeError, KeyError, ValueError, orjson.JSONDecodeError) as error:
            raise CodecError(f"cached bytes do not decode: {error}") from error

    def _tree(self, value: object) -> Any:
        encoder = self._encoders.get(type(value))
        if encoder is not None:
            return encoder(value)
        kind = type(value)
        if self._types.get(kind.__qualname__) is not kind:
            raise CodecError(f"{kind.__qualname__} is not a registered record type")
        if isinstance(value, enum.Enum):
            return {_TYPE: kind.__qualname__, "v": value.value}
        return {
            _TYPE: kind.__qualname__,
            _FIELDS: [self._tree(getattr(value, field.name)) for field in _fields(kind)],
        }

    def _sequence(self, items: Iterable[object]) -> list[Any]:
        return [self._tree(item) for item in items]

    def _mapping(self, mapping: Mapping[object, object]) -> dict[str, Any]:
        return {_TYPE: "map", "v": [[self._tree(k), self._tree(v)] for k, v in mapping.items()]}

    def _value(self, tree: Any) -> Any:
        if isinstance(tree, list):
            # Records hold sequences as tuples: a cached value must not be changed in place.
            return tuple(self._value(item) for item in tree)
        if not isinstance(tree, dict):
            return tree
        tag = tree[_TYPE]
        if tag == "dt":
            return datetime.fromisoformat(tree["v"])
        if tag == "date":
            return date.fromisoformat(tree["v"])
        if tag == "td":
            days, seconds, microseconds = tree["v"]
            return timedelta(days=days, seconds=seconds, microseconds=microseconds)
        if tag == "dec":
            return Decimal(tree["v"])
        if tag == "frac":
            return Fraction(*tree["v"])
        if tag == "float":
            return float(tree["v"])
        if tag == "map":
            return {self._value(key): self._value(item) for key, item in tree["v"]}
        kind = self._types[tag]
        if issubclass(kind, enum.Enum):
            return kind(tree["v"])
        return kind(*(self._value(item) for item in tree[_FIELDS]))


def digest(codec: ValueCodec, value: object) -> str:
    """A short, stable digest of a value: the cache key of a query or filter."""
    return hashlib.sha256(codec.encode(value)).hexdigest()[:32]


def _same(value: object) -> object:
    return value


def _float(value: float) -> object:
    # JSON has no NaN or infinity; orjson would write null.
    return value if math.isfinite(value) else {_TYPE: "float", "v": repr(value)}


def _fields(kind: type) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(field for field in dataclasses.fields(kind) if field.init)


def _signature(kind: type) -> str:
    if issubclass(kind, enum.Enum):
        return f"{kind.__qualname__}[{','.join(str(member.value) for member in kind)}]"
    return f"{kind.__qualname__}({','.join(field.name for field in _fields(kind))})"
