"""Turning result rows into the services' frozen records."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, TypeVar

import sqlalchemy as sa

R = TypeVar("R")

# A row of any width: SQLAlchemy types rows by their columns, services select many shapes.
AnyRow = sa.Row[*tuple[Any, ...]]


def columns_of(table: sa.Table, record_type: type[Any]) -> list[sa.ColumnElement[Any]]:
    """The table's columns named like the record's fields, in the record's order."""
    return [table.c[field.name] for field in fields(record_type)]


def record_from(record_type: type[R], row: AnyRow | Sequence[Any]) -> R:
    """The record whose fields are the row's columns in order (see columns_of)."""
    make: Callable[..., R] = record_type
    return make(*row)
