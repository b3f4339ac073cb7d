"""Keyset pagination shared by the services: a page of records and whether more follow."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import orjson

from dataintel.errors import BadUserInputError

T = TypeVar("T")

# A position in a sort order: the sort values of the last record seen, id last.
Keyset = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Up to ``first`` records after the record at ``after`` (None: from the start)."""

    first: int
    after: Keyset | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of records in their sort order."""

    items: Sequence[T]
    has_next_page: bool


_CURSOR_VERSION = "v1"


def encode_cursor(keyset: Keyset) -> str:
    """An opaque, URL-safe cursor for a position; datetimes keep their time zone."""
    values = [
        {"t": value.isoformat()} if isinstance(value, datetime) else value for value in keyset
    ]
    raw = orjson.dumps([_CURSOR_VERSION, values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Keyset:
    """The position a cursor names; a cursor this gateway did not make is BAD_USER_INPUT."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        version, values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if version != _CURSOR_VERSION or not isinstance(values, list):
            raise ValueError(version)
        return tuple(
            datetime.fromisoformat(value["t"]) if isinstance(value, dict) else value
            for value in values
        )
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise BadUserInputError(f"The cursor {cursor!r} is not valid.") from None
