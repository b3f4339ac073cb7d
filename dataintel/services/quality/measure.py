"""One check measured in the database: aggregates for the counts, GROUP BY for samples.

Results follow Great Expectations' shape: element count (rows after ``where``), null count,
unexpected count and percent, and a sample of unexpected values with their counts, most
frequent first. NULLs are never unexpected except for ``not_null``; the unexpected percent
is over the non-null rows (over every row for ``not_null``) and null when there are none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.services.quality.catalog import TABLES, CheckDefinition

Status = Literal["PASS", "WARN", "FAIL", "ERROR"]
SAMPLE_LIMIT = 20


@dataclass(frozen=True, slots=True)
class UnexpectedValue:
    """An unexpected value (several columns joined by ', ' for unique) and its rows."""

    value: str
    count: int


@dataclass(frozen=True, slots=True)
class Measurement:
    """What a check found; status and the reason of an ERROR included."""

    status: Status
    observed_value: float | None
    element_count: int | None
    null_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    unexpected_sample: tuple[UnexpectedValue, ...]
    duplicated_values: int | None
    """unique only: distinct values held by more than one row."""
    reason: str | None


class CheckCannotRun(Exception):
    """The check has nothing to measure (e.g. freshness of an empty table)."""


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | float) and value == int(value):
        return str(int(value))
    return str(value)


def _rows(check: CheckDefinition) -> sa.Subquery:
    table = TABLES[check.dataset]
    statement = sa.select(table)
    if check.where is not None:
        statement = statement.where(sa.text(check.where))
    return statement.subquery("checked_rows")


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _unexpected(check: CheckDefinition, rows: sa.Subquery) -> sa.ColumnElement[bool]:
    column = rows.c[check.column]
    if check.type == "not_null":
        return column.is_(None)
    if check.type == "between":
        outside: list[sa.ColumnElement[bool]] = []
        if check.minimum is not None:
            outside.append(column <= check.minimum if check.strict else column < check.minimum)
        if check.maximum is not None:
            outside.append(column >= check.maximum if check.strict else column > check.maximum)
        return sa.and_(column.is_not(None), sa.or_(*outside))
    if check.type == "in_set":
        return sa.and_(column.is_not(None), column.not_in(check.values))
    if check.type == "regex":
        assert check.pattern is not None
        # REGEXP on SQLite (a function the store registers on each connection), ~ on PostgreSQL.
        matches = sa.cast(column, sa.String).regexp_match(check.pattern)
        return sa.and_(column.is_not(None), sa.not_(matches))
    if check.type == "referential":
        assert check.references is not None
        table_name, _, column_name = check.references.partition(".")
        target = TABLES[table_name].c[column_name]
        found = sa.select(sa.literal(1)).where(target == column).exists()
        return sa.and_(column.is_not(None), sa.not_(found))
    raise ValueError(check.type)


def _verdict(check: CheckDefinition, unexpected: int, total: int) -> Status:
    if total == 0 or unexpected / total <= 1 - check.mostly:
        return "PASS"
    return "WARN" if check.severity == "warn" else "FAIL"


def _percent(unexpected: int, total: int) -> float | None:
    return unexpected * 100 / total if total else None


async def _row_check(connection: AsyncConnection, check: CheckDefinition) -> Measurement:
    rows = _rows(check)
    column = rows.c[check.column]
    bad = _unexpected(check, rows)
    elements, nulls, unexpected = (
        await connection.execute(
            sa.select(sa.func.count(), _count(column.is_(None)), _count(bad)).select_from(rows)
        )
    ).one()
    elements, nulls, unexpected = int(elements), int(nulls), int(unexpected)
    sample: tuple[UnexpectedValue, ...] = ()
    if check.type != "not_null" and unexpected:
        found = await connection.execute(
            sa.select(column, sa.func.count().label("rows"))
            .where(bad)
            .group_by(column)
            .order_by(sa.func.count().desc(), column)
            .limit(SAMPLE_LIMIT)
        )
        sample = tuple(UnexpectedValue(_text(value), int(count)) for value, count in found)
    total = elements if check.type == "not_null" else elements - nulls
    return Measurement(
        status=_verdict(check, unexpected, total),
        observed_value=float(unexpected),
        element_count=elements,
        null_count=nulls,
        unexpected_count=unexpected,
        unexpected_percent=_percent(unexpected, total),
        unexpected_sample=sample,
        duplicated_values=None,
        reason=None,
    )


async def _unique(connection: AsyncConnection, check: CheckDefinition) -> Measurement:
    rows = _rows(check)
    # Lower-cased values are grouped by the expression, never by a label: PostgreSQL reads
    # a GROUP BY name as the input column first.
    columns: list[sa.ColumnElement[Any]] = [
        sa.func.lower(rows.c[name]) if check.ignore_case else rows.c[name] for name in check.columns
    ]
    any_null = sa.or_(*(column.is_(None) for column in columns))
    elements, nulls = (
        await connection.execute(sa.select(sa.func.count(), _count(any_null)).select_from(rows))
    ).one()
    elements, nulls = int(elements), int(nulls)
    groups = (
        sa.select(
            *(column.label(name) for column, name in zip(columns, check.columns, strict=True)),
            sa.func.count().label("rows"),
        )
        .where(sa.not_(any_null))
        .group_by(*columns)
        .having(sa.func.count() > 1)
        .subquery("duplicated")
    )
    duplicated, unexpected = (
        await connection.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(groups.c.rows), 0))
        )
    ).one()
    duplicated, unexpected = int(duplicated), int(unexpected)
    sample: tuple[UnexpectedValue, ...] = ()
    if duplicated:
        keys = [groups.c[name] for name in check.columns]
        found = await connection.execute(
            sa.select(*keys, groups.c.rows)
            .order_by(groups.c.rows.desc(), *keys)
            .limit(SAMPLE_LIMIT)
        )
        sample = tuple(
            UnexpectedValue(", ".join(_text(value) for value in row[:-1]), int(row[-1]))
            for row in found
        )
    total = elements - nulls
    return Measurement(
        status=_verdict(check, unexpected, total),
        observed_value=float(duplicated),
        element_count=elements,
        null_count=nulls,
        unexpected_count=unexpected,
        unexpected_percent=_percent(unexpected, total),
        unexpected_sample=sample,
        duplicated_values=duplicated,
        reason=None,
    )


async def _row_count(connection: AsyncConnection, check: CheckDefinition) -> Measurement:
    rows = _rows(check)
    count = int((await connection.execute(sa.select(sa.func.count()).select_from(rows))).one()[0])
    inside = (check.minimum is None or count >= check.minimum) and (
        check.maximum is None or count <= check.maximum
    )
    failed: Status = "WARN" if check.severity == "warn" else "FAIL"
    return Measurement(
        "PASS" if inside else failed, float(count), count, None, None, None, (), None, None
    )


async def _freshness(
    connection: AsyncConnection, check: CheckDefinition, now: datetime
) -> Measurement:
    rows = _rows(check)
    column = rows.c[check.column]
    count, latest = (
        await connection.execute(sa.select(sa.func.count(), sa.func.max(column)))
    ).one()
    if latest is None:
        raise CheckCannotRun(
            f"{check.dataset}.{check.column} has no value"
            f" ({'no rows' if not count else 'every value is NULL'}): no age to measure."
        )
    if isinstance(latest, str):
        # SQLite: max() over the stored text loses the column's type.
        latest = datetime.fromisoformat(latest).replace(tzinfo=now.tzinfo)
    age = (now - latest).total_seconds()
    status: Status = "PASS"
    if check.warn_after_seconds is not None and age > check.warn_after_seconds:
        status = "WARN"
    if check.fail_after_seconds is not None and age > check.fail_after_seconds:
        status = "FAIL"
    return Measurement(status, age, int(count), None, None, None, (), None, None)


async def measure(
    connection: AsyncConnection, check: CheckDefinition, now: datetime
) -> Measurement:
    """Runs one check's statements; CheckCannotRun when there is nothing to measure."""
    if check.type == "unique":
        return await _unique(connection, check)
    if check.type == "row_count_between":
        return await _row_count(connection, check)
    if check.type == "freshness":
        return await _freshness(connection, check, now)
    return await _row_check(connection, check)


def error_measurement(reason: str) -> Measurement:
    """The result of a check that could not run."""
    return Measurement("ERROR", None, None, None, None, None, (), None, reason)
