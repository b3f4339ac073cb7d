"""Export filters: a JSON object of conditions on columns, all of which must hold.

``{"status": "paid", "placed_at": {"gte": "2026-01-01T00:00:00Z"}, "customer_id": {"in":
[1, 2]}}``: a plain value means ``eq``; operators are eq, ne, in, notIn, gt, gte, lt, lte
and isNull (true or false). Values are checked against the column's kind, so a filter that
does not parse is BAD_USER_INPUT naming its column, before any job starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from dataintel.errors import BadUserInputError
from dataintel.services.export.datasets import ExportColumn, ExportDataset

OPERATORS = ("eq", "ne", "in", "notIn", "gt", "gte", "lt", "lte", "isNull")
_DOMAIN = "export"


def _bad(field: str, message: str) -> BadUserInputError:
    return BadUserInputError(message, domain=_DOMAIN, details={"field": field})


def parse_value(column: ExportColumn, raw: object, field: str) -> object:
    """A filter value as the column's kind wants it; BAD_USER_INPUT otherwise."""
    kind = column.kind
    if kind in ("int", "cents"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise _bad(field, f"{field}: '{column.name}' takes integers, not {raw!r}.")
        return raw
    if kind in ("float", "decimal"):
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise _bad(field, f"{field}: '{column.name}' takes numbers, not {raw!r}.")
        try:
            return float(raw)
        except ValueError:
            raise _bad(field, f"{field}: '{column.name}' takes numbers, not {raw!r}.") from None
    if kind == "timestamp":
        if not isinstance(raw, str):
            raise _bad(field, f"{field}: '{column.name}' takes ISO 8601 times, not {raw!r}.")
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise _bad(field, f"{field}: '{raw}' is not an ISO 8601 time.") from None
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not isinstance(raw, str):
        raise _bad(field, f"{field}: '{column.name}' takes strings, not {raw!r}.")
    return raw


def _condition(
    column: ExportColumn, operator: str, raw: object, field: str
) -> sa.ColumnElement[bool]:
    expression = column.expression
    if operator == "isNull":
        if not isinstance(raw, bool):
            raise _bad(field, f"{field}: isNull takes true or false.")
        return expression.is_(None) if raw else expression.is_not(None)
    if operator in ("in", "notIn"):
        if not isinstance(raw, list) or not raw:
            raise _bad(field, f"{field}: {operator} takes a non-empty list.")
        values = [parse_value(column, item, field) for item in raw]
        return expression.in_(values) if operator == "in" else expression.not_in(values)
    value = parse_value(column, raw, field)
    match operator:
        case "eq":
            return expression == value
        case "ne":
            return expression != value
        case "gt":
            return expression > value
        case "gte":
            return expression >= value
        case "lt":
            return expression < value
        case "lte":
            return expression <= value
    raise _bad(field, f"{field}: unknown operator '{operator}'; operators: {', '.join(OPERATORS)}.")


def filter_conditions(
    dataset: ExportDataset, raw: Mapping[str, Any] | None
) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions of a filter object over the dataset's columns."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        raise _bad("filter", "filter must be an object of column conditions.")
    conditions: list[sa.ColumnElement[bool]] = []
    for name, condition in raw.items():
        field = f"filter.{name}"
        column = dataset.column(name)
        if column is None:
            names = ", ".join(column.name for column in dataset.columns)
            raise _bad(field, f"{field}: {dataset.name} has no column '{name}'; columns: {names}.")
        if isinstance(condition, Mapping):
            if not condition:
                raise _bad(field, f"{field}: give at least one operator.")
            for operator, value in condition.items():
                conditions.append(_condition(column, operator, value, f"{field}.{operator}"))
        else:
            conditions.append(_condition(column, "eq", condition, field))
    return conditions
