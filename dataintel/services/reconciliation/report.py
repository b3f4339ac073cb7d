"""A comparison's report, computed in the database: both sides' rows grouped by key.

Rows with a NULL in a key part are counted apart and never paired; a key held by more than
one row on a side is a duplicate and is never paired either, so that no pairing is
arbitrary. Both sides are stacked (UNION ALL, tagged by side) and grouped by key: per key,
how many rows each side holds and, when one, its values. That is a FULL OUTER JOIN of the
sides' per-key groups done with one sort: SQLite (3.40 here) ran the FULL OUTER JOIN of two
grouped CTEs as a nested loop, 12 s for the demo's 10,000 orders. One aggregate statement
counts every category; samples are a few more statements, ordered by key and capped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.services.reconciliation.catalog import (
    TABLES,
    ColumnComparison,
    ColumnKind,
    ComparisonDefinition,
    DatasetDefinition,
)

SampleCategory = Literal[
    "only_left", "only_right", "mismatched", "duplicate_left", "duplicate_right"
]
SAMPLE_CATEGORIES: tuple[SampleCategory, ...] = (
    "only_left",
    "only_right",
    "mismatched",
    "duplicate_left",
    "duplicate_right",
)


@dataclass(frozen=True, slots=True)
class SideReport:
    """What one side held: its rows and those that could not be paired by key."""

    dataset: str
    rows: int
    null_key_rows: int
    """Rows with a NULL in a key column: never paired."""
    duplicate_keys: int
    """Distinct keys that more than one row of this side holds."""
    duplicate_rows: int
    """Rows holding such a key: never paired."""
    blocked_rows: int
    """Rows whose key is unique here but duplicated on the other side: never paired."""
    only_columns: tuple[str, ...]
    """Columns of this side that the other side lacks (after the declared mappings)."""


@dataclass(frozen=True, slots=True)
class ColumnReport:
    """How one compared column differed over the paired rows."""

    name: str
    left_column: str
    right_column: str
    kind: ColumnKind
    abs_tolerance: float
    rel_tolerance: float
    mismatch_count: int
    """Paired rows whose values differ beyond the tolerance, or where one side is NULL."""
    within_tolerance_count: int
    """Paired rows whose values differ, but within the tolerance (not mismatches)."""
    null_diff: int
    """Paired rows where exactly one side is NULL (NULL against NULL is equal)."""
    max_abs_diff: float | None
    """The largest absolute difference over rows with both values (seconds for times)."""


@dataclass(frozen=True, slots=True)
class SampleValue:
    """A compared column's values on both sides, as text."""

    column: str
    left: str | None
    right: str | None


@dataclass(frozen=True, slots=True)
class Sample:
    """One key of a category, with how many rows each side holds and their values."""

    category: SampleCategory
    key: tuple[str, ...]
    left_rows: int
    right_rows: int
    values: tuple[SampleValue, ...]


@dataclass(frozen=True, slots=True)
class ReportCounts:
    """Everything a comparison found, without when or by whom it ran."""

    left: SideReport
    right: SideReport
    only_left: int
    only_right: int
    matched: int
    mismatched: int
    columns: tuple[ColumnReport, ...]
    samples: tuple[Sample, ...]

    @property
    def match_rate(self) -> float | None:
        """Matched keys over the rows of the larger side; None when both sides are empty."""
        larger = max(self.left.rows, self.right.rows)
        return self.matched / larger if larger else None

    @property
    def discrepancies(self) -> int:
        """Rows or keys that are anything but matched (0: the sides agree)."""
        sides = (self.left, self.right)
        unpaired = sum(
            side.null_key_rows + side.duplicate_rows + side.blocked_rows for side in sides
        )
        return self.only_left + self.only_right + self.mismatched + unpaired


# --- SQL ---------------------------------------------------------------------------------


def _source(dataset: DatasetDefinition, names: Sequence[str], alias: str) -> sa.Subquery:
    if dataset.table is not None:
        table = TABLES[dataset.table]
        statement = sa.select(table)
        if dataset.where is not None:
            statement = statement.where(sa.text(dataset.where))
        return statement.subquery(alias)
    assert dataset.query is not None
    return (
        sa.text(dataset.query).columns(*(sa.column(name) for name in dict.fromkeys(names)))
    ).subquery(alias)


def _tagged(
    source: sa.Subquery, side: str, keys: Sequence[str], columns: Sequence[str]
) -> sa.Select[Any]:
    return sa.select(
        sa.literal(side).label("side"),
        *(source.c[name].label(f"k{index}") for index, name in enumerate(keys)),
        *(source.c[name].label(f"v{index}") for index, name in enumerate(columns)),
    )


def _epoch(moment: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[float]:
    if dialect == "sqlite":
        # Whole seconds, plus the fraction that %f ("SS.SSS") holds beyond %S ("SS").
        whole = sa.cast(sa.func.strftime("%s", moment), sa.Float)
        fraction = sa.cast(sa.func.strftime("%f", moment), sa.Float) - sa.cast(
            sa.func.strftime("%S", moment), sa.Float
        )
        return whole + fraction
    return sa.cast(sa.extract("epoch", moment), sa.Float)


@dataclass(frozen=True, slots=True)
class _ColumnSql:
    left: sa.ColumnElement[Any]
    right: sa.ColumnElement[Any]
    null_diff: sa.ColumnElement[bool]
    beyond: sa.ColumnElement[bool]
    """Both values present and different beyond the tolerance."""
    within: sa.ColumnElement[bool] | None
    difference: sa.ColumnElement[float] | None


def _column_sql(
    column: ColumnComparison,
    left: sa.ColumnElement[Any],
    right: sa.ColumnElement[Any],
    reference: str,
    dialect: str,
) -> _ColumnSql:
    both = sa.and_(left.is_not(None), right.is_not(None))
    null_diff = sa.or_(
        sa.and_(left.is_(None), right.is_not(None)), sa.and_(left.is_not(None), right.is_(None))
    )
    if column.kind == "text":
        return _ColumnSql(left, right, null_diff, sa.and_(both, left != right), None, None)
    left_number = _epoch(left, dialect) if column.kind == "time" else sa.cast(left, sa.Float)
    right_number = _epoch(right, dialect) if column.kind == "time" else sa.cast(right, sa.Float)
    difference = sa.func.abs(left_number - right_number)
    reference_value = left_number if reference == "left" else right_number
    allowed = sa.literal(column.abs_tolerance, sa.Float) + sa.literal(
        column.rel_tolerance, sa.Float
    ) * sa.func.abs(reference_value)
    beyond = sa.and_(both, difference > allowed)
    within = sa.and_(both, difference > 0, difference <= allowed)
    return _ColumnSql(left, right, null_diff, beyond, within, difference)


class _Plan:
    """The statements of one comparison on one dialect."""

    def __init__(self, comparison: ComparisonDefinition, dialect: str) -> None:
        self.comparison = comparison
        keys = comparison.keys
        columns = comparison.columns
        self.left_source = _source(
            comparison.left, [*(k.left for k in keys), *(c.left for c in columns)], "left_rows"
        )
        self.right_source = _source(
            comparison.right, [*(k.right for k in keys), *(c.right for c in columns)], "right_rows"
        )
        stacked = sa.union_all(
            _tagged(self.left_source, "L", [k.left for k in keys], [c.left for c in columns]),
            _tagged(self.right_source, "R", [k.right for k in keys], [c.right for c in columns]),
        ).subquery("stacked")

        def on_side(side: str, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
            return sa.case((stacked.c.side == side, value))

        key_columns = [stacked.c[f"k{i}"] for i in range(len(keys))]
        joined = (
            sa.select(
                *key_columns,
                sa.func.sum(on_side("L", sa.literal(1))).label("ln"),
                sa.func.sum(on_side("R", sa.literal(1))).label("rn"),
                *(
                    sa.func.min(on_side("L", stacked.c[f"v{i}"])).label(f"lv{i}")
                    for i in range(len(columns))
                ),
                *(
                    sa.func.min(on_side("R", stacked.c[f"v{i}"])).label(f"rv{i}")
                    for i in range(len(columns))
                ),
            )
            .where(*(key.is_not(None) for key in key_columns))
            .group_by(*key_columns)
            .cte("joined")
        )
        self.joined = joined
        self.keys = [joined.c[f"k{i}"] for i in range(len(keys))]
        self.paired = sa.and_(joined.c.ln == 1, joined.c.rn == 1)
        self.columns = [
            _column_sql(
                column, joined.c[f"lv{i}"], joined.c[f"rv{i}"], comparison.reference, dialect
            )
            for i, column in enumerate(columns)
        ]
        self.mismatch = sa.or_(sa.false(), *(sa.or_(c.null_diff, c.beyond) for c in self.columns))
        self.categories: dict[SampleCategory, sa.ColumnElement[bool]] = {
            "only_left": sa.and_(joined.c.ln == 1, joined.c.rn.is_(None)),
            "only_right": sa.and_(joined.c.ln.is_(None), joined.c.rn == 1),
            "mismatched": sa.and_(self.paired, self.mismatch),
            "duplicate_left": joined.c.ln > 1,
            "duplicate_right": joined.c.rn > 1,
        }

    def side_counts(self, source: sa.Subquery, keys: Sequence[str]) -> sa.Select[int, int]:
        null_key = sa.or_(*(source.c[name].is_(None) for name in keys))
        return sa.select(sa.func.count(), _count(null_key)).select_from(source)

    def aggregates(self) -> sa.Select[Any]:
        joined = self.joined
        counted: list[sa.ColumnElement[Any]] = [
            _count(self.categories["only_left"]),
            _count(self.categories["only_right"]),
            _count(self.paired),
            _count(self.categories["mismatched"]),
            _count(joined.c.ln > 1),
            _total(joined.c.ln, joined.c.ln > 1),
            _count(joined.c.rn > 1),
            _total(joined.c.rn, joined.c.rn > 1),
            _count(sa.and_(joined.c.ln == 1, joined.c.rn > 1)),
            _count(sa.and_(joined.c.rn == 1, joined.c.ln > 1)),
        ]
        for column in self.columns:
            counted.append(_count(sa.and_(self.paired, sa.or_(column.null_diff, column.beyond))))
            counted.append(
                _count(sa.and_(self.paired, column.within))
                if column.within is not None
                else sa.literal(0)
            )
            counted.append(_count(sa.and_(self.paired, column.null_diff)))
            counted.append(
                sa.func.max(sa.case((self.paired, column.difference)))
                if column.difference is not None
                else sa.null()
            )
        return sa.select(*counted).select_from(joined)

    def samples(self, category: SampleCategory, limit: int) -> sa.Select[Any]:
        joined = self.joined
        values: list[sa.ColumnElement[Any]] = []
        for column in self.columns:
            values.extend((column.left, column.right))
        return (
            sa.select(*self.keys, joined.c.ln, joined.c.rn, *values)
            .where(self.categories[category])
            .order_by(*self.keys)
            .limit(limit)
        )


def _count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _total(
    value: sa.ColumnElement[Any], condition: sa.ColumnElement[bool]
) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    # Epoch arithmetic leaves traces below a microsecond; they are no difference.
    return round(float(value), 6)


async def _columns_of(connection: AsyncConnection, dataset: DatasetDefinition) -> list[str]:
    if dataset.table is not None:
        return list(TABLES[dataset.table].c.keys())
    assert dataset.query is not None
    probe = (
        sa.select(sa.text("*"))
        .select_from(sa.text(f"({dataset.query}) AS probe_rows"))
        .where(sa.false())
    )
    return list((await connection.execute(probe)).keys())


async def _only_columns(
    connection: AsyncConnection, comparison: ComparisonDefinition
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    left = await _columns_of(connection, comparison.left)
    right = await _columns_of(connection, comparison.right)
    pairs = [*((k.left, k.right) for k in comparison.keys)]
    pairs.extend((c.left, c.right) for c in comparison.columns)
    mapped_left = {pair[0] for pair in pairs}
    mapped_right = {pair[1] for pair in pairs}
    only_left = [name for name in left if name not in right and name not in mapped_left]
    only_right = [name for name in right if name not in left and name not in mapped_right]
    return tuple(only_left), tuple(only_right)


async def compute_report(
    connection: AsyncConnection, comparison: ComparisonDefinition
) -> ReportCounts:
    """Runs a comparison's statements on one connection and shapes what they count."""
    plan = _Plan(comparison, connection.dialect.name)
    keys = comparison.keys
    left_rows, left_null = (
        await connection.execute(plan.side_counts(plan.left_source, [k.left for k in keys]))
    ).one()
    right_rows, right_null = (
        await connection.execute(plan.side_counts(plan.right_source, [k.right for k in keys]))
    ).one()
    row = (await connection.execute(plan.aggregates())).one()
    (
        only_left,
        only_right,
        paired,
        mismatched,
        left_dup_keys,
        left_dup_rows,
        right_dup_keys,
        right_dup_rows,
        left_blocked,
        right_blocked,
    ) = (int(value) for value in row[:10])
    columns: list[ColumnReport] = []
    for index, column in enumerate(comparison.columns):
        mismatch, within, null_diff, max_diff = row[10 + 4 * index : 14 + 4 * index]
        columns.append(
            ColumnReport(
                name=column.name,
                left_column=column.left,
                right_column=column.right,
                kind=column.kind,
                abs_tolerance=column.abs_tolerance,
                rel_tolerance=column.rel_tolerance,
                mismatch_count=int(mismatch),
                within_tolerance_count=int(within),
                null_diff=int(null_diff),
                max_abs_diff=_number(max_diff),
            )
        )
    samples: list[Sample] = []
    if comparison.sample_size > 0:
        for category in SAMPLE_CATEGORIES:
            statement = plan.samples(category, comparison.sample_size)
            for found in (await connection.execute(statement)).all():
                key = tuple(_text(value) or "" for value in found[: len(keys)])
                rest = found[len(keys) :]
                values = tuple(
                    SampleValue(column.name, _text(rest[2 + 2 * i]), _text(rest[3 + 2 * i]))
                    for i, column in enumerate(comparison.columns)
                )
                samples.append(Sample(category, key, int(rest[0] or 0), int(rest[1] or 0), values))
    left_only_columns, right_only_columns = await _only_columns(connection, comparison)
    return ReportCounts(
        left=SideReport(
            comparison.left.label,
            int(left_rows),
            int(left_null),
            left_dup_keys,
            left_dup_rows,
            left_blocked,
            left_only_columns,
        ),
        right=SideReport(
            comparison.right.label,
            int(right_rows),
            int(right_null),
            right_dup_keys,
            right_dup_rows,
            right_blocked,
            right_only_columns,
        ),
        only_left=only_left,
        only_right=only_right,
        matched=paired - mismatched,
        mismatched=mismatched,
        columns=tuple(columns),
        samples=tuple(samples),
    )


def with_overrides(
    comparison: ComparisonDefinition,
    tolerances: Sequence[tuple[str, float | None, float | None]],
    sample_size: int | None,
) -> ComparisonDefinition:
    """The comparison with some columns' tolerances (name, absTol, relTol) and sample size."""
    by_name = {column.name: column for column in comparison.columns}
    changed = dict(by_name)
    for name, absolute, relative in tolerances:
        column = by_name.get(name)
        if column is None:
            raise KeyError(name)
        if column.kind == "text" and (absolute or relative):
            raise ValueError(f"column '{name}' holds text, which has no tolerance")
        changed[name] = replace(
            changed[name],
            abs_tolerance=column.abs_tolerance if absolute is None else absolute,
            rel_tolerance=column.rel_tolerance if relative is None else relative,
        )
    return replace(
        comparison,
        columns=tuple(changed[column.name] for column in comparison.columns),
        sample_size=comparison.sample_size if sample_size is None else sample_size,
    )
