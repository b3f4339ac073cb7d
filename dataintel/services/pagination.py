"""Keyset pagination shared by the services: a page of records and whether more follow.

A page is asked for the way Relay's Cursor Connections specification says: ``first`` items
after the cursor ``after``, or ``last`` items before the cursor ``before``, or both (the
items between the cursors, then the first ``first`` of them, then the last ``last`` of
those). A cursor names a position in the sort order (the sort values of a record, its id
last), not an offset, so rows inserted or deleted elsewhere never shift a page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa

from dataintel.errors import BadUserInputError
from dataintel.page_size import DEFAULT_PAGE as DEFAULT_PAGE

T = TypeVar("T")


# A position in a sort order: the sort values of the last record seen, id last.
Keyset = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Up to ``first`` records after ``after`` and/or up to ``last`` before ``before``.

    None for a cursor means from that end of the list; ``first`` None with ``last`` None
    is not a request the resolvers make (they default ``first``).
    """

    first: int | None
    after: Keyset | None = None
    last: int | None = None
    before: Keyset | None = None

    @property
    def backwards(self) -> bool:
        """Whether the rows are read from the end (only ``last`` was given)."""
        return self.first is None and self.last is not None

    @property
    def limit(self) -> int:
        """Rows to fetch: enough to take the page and tell whether more lie beyond it."""
        if self.first is None:
            return (self.last or 0) + 1
        return max(self.first, self.last or 0) + 1


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of records in their sort order."""

    items: Sequence[T]
    has_next_page: bool
    has_previous_page: bool = False


def page_from_rows(rows: Sequence[T], request: PageRequest) -> Page[T]:
    """The page in sort order from rows fetched with ``keyset_order`` and ``request.limit``.

    hasNextPage and hasPreviousPage follow the specification: each is known (and true when
    more items lie beyond) in the direction the page was read; the other one is false.
    """
    if request.first is None:
        last = request.last or 0
        return Page(list(reversed(rows[:last])), False, has_previous_page=len(rows) > last)
    items = list(rows[: request.first])
    has_previous = False
    if request.last is not None:
        has_previous = len(rows) > request.last
        items = items[max(len(items) - request.last, 0) :] if request.last else []
    return Page(items, len(rows) > request.first, has_previous_page=has_previous)


def keyset_conditions(
    columns: Sequence[sa.ColumnElement[Any]], descending: bool, request: PageRequest
) -> list[sa.ColumnElement[bool]]:
    """WHERE conditions for the rows strictly between ``after`` and ``before``."""
    conditions: list[sa.ColumnElement[bool]] = []
    for cursor, beyond in ((request.after, True), (request.before, False)):
        if cursor is None:
            continue
        if len(cursor) != len(columns):
            raise BadUserInputError("The cursor does not point into this list.")
        key = sa.tuple_(*columns)
        position = sa.tuple_(
            *(sa.literal(value, column.type) for column, value in zip(columns, cursor, strict=True))
        )
        # "Beyond" the after cursor is later in the sort order: smaller when descending.
        conditions.append(key < position if beyond == descending else key > position)
    return conditions


def keyset_order(
    columns: Sequence[sa.ColumnElement[Any]], descending: bool, request: PageRequest
) -> list[sa.ColumnElement[Any]]:
    """ORDER BY for the fetch: the sort order, reversed when the page is read from the end."""
    return keyset_order_of(columns, descending, PageRead.of(request))


@dataclass(frozen=True, slots=True)
class PageRead:
    """How a page is read, without its values: which cursors bound it, from which end.

    Pages read the same way share one statement whose cursors and limit are bind parameters
    (``keyset_bound_conditions``, ``keyset_order_of``, ``keyset_parameters``).
    """

    after: bool
    before: bool
    backwards: bool

    @staticmethod
    def of(request: PageRequest) -> PageRead:
        """How ``request`` is read."""
        return _READS[request.after is not None, request.before is not None, request.backwards]


_READS = {
    (after, before, backwards): PageRead(after, before, backwards)
    for after in (False, True)
    for before in (False, True)
    for backwards in (False, True)
}


def keyset_order_of(
    columns: Sequence[sa.ColumnElement[Any]], descending: bool, read: PageRead
) -> list[sa.ColumnElement[Any]]:
    """ORDER BY for a page read this way (see keyset_order)."""
    reverse = descending != read.backwards
    return [column.desc() if reverse else column.asc() for column in columns]


def keyset_bound_conditions(
    columns: Sequence[sa.ColumnElement[Any]], descending: bool, read: PageRead
) -> list[sa.ColumnElement[bool]]:
    """``keyset_conditions`` with the cursors' values as bind parameters ``after0``...,
    ``before0``... (filled by ``keyset_parameters``)."""
    conditions: list[sa.ColumnElement[bool]] = []
    for name, present, beyond in (("after", read.after, True), ("before", read.before, False)):
        if not present:
            continue
        key = sa.tuple_(*columns)
        position = sa.tuple_(
            *(
                sa.bindparam(f"{name}{index}", type_=column.type)
                for index, column in enumerate(columns)
            )
        )
        # "Beyond" the after cursor is later in the sort order: smaller when descending.
        conditions.append(key < position if beyond == descending else key > position)
    return conditions


def keyset_parameters(width: int, request: PageRequest) -> dict[str, Any]:
    """The bind parameters of a page's cursors and limit (see keyset_bound_conditions);
    a cursor of another list (not ``width`` values) is BAD_USER_INPUT."""
    parameters: dict[str, Any] = {"limit": request.limit}
    for name, cursor in (("after", request.after), ("before", request.before)):
        if cursor is None:
            continue
        if len(cursor) != width:
            raise BadUserInputError("The cursor does not point into this list.")
        for index, value in enumerate(cursor):
            parameters[f"{name}{index}"] = value
    return parameters


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
