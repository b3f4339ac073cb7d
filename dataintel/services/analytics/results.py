"""The result records of an analytics query, shaped from the statements' raw aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal

from dataintel.services.analytics.catalog import DimensionDefinition, MeasureDefinition
from dataintel.services.analytics.planner import Additive, Plan, Value
from dataintel.store.rows import AnyRow

ResultSource = Literal["rollup", "raw", "mixed"]


@dataclass(frozen=True, slots=True)
class MeasureValue:
    """One measure's value; null where it is undefined (a ratio over zero)."""

    name: str
    unit: str
    value: float | None


@dataclass(frozen=True, slots=True)
class DimensionValue:
    """One dimension's value in a row; null where the source has none (anonymous events)."""

    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class AnalyticsRow:
    """One group: its time bucket's start, its dimension values and its measures."""

    time: datetime | None
    dimensions: tuple[DimensionValue, ...]
    measures: tuple[MeasureValue, ...]


@dataclass(frozen=True, slots=True)
class AnalyticsResult:
    """The rows of a query and its totals over every group that passed its filters."""

    measures: tuple[MeasureDefinition, ...]
    dimensions: tuple[DimensionDefinition, ...]
    granularity: str | None
    timezone: str
    start: datetime | None
    end: datetime | None
    rows: tuple[AnalyticsRow, ...]
    totals: tuple[MeasureValue, ...]
    truncated: bool
    source: ResultSource = "raw"
    """Where the aggregates came from: rollups for every source, none, or some."""
    rollups: tuple[str, ...] = ()
    """The rollups that answered, by name."""
    rollup_built_at: datetime | None = None
    """When the oldest rollup partition used was built (each checked current at query time)."""


def _scaled(number: float, scale: Fraction) -> float:
    if scale.numerator != 1:
        number = number * scale.numerator
    if scale.denominator != 1:
        number = number / scale.denominator
    return number


def _evaluate(plan: Plan, value: Value, raws: Sequence[Any]) -> float | None:
    def additive(part: Additive) -> float:
        raw = raws[plan.raws.index(part.raw)]
        return _scaled(float(raw) if raw is not None else 0.0, part.scale)

    if isinstance(value, Additive):
        return additive(value)
    denominator = additive(value.denominator)
    if denominator == 0:
        return None
    return _scaled(additive(value.numerator) / denominator, value.scale)


def _bucket_start(plan: Plan, key: str | None) -> datetime | None:
    if key is None or plan.granularity is None:
        return None
    return plan.clock.bucket_start(key, plan.granularity)


def _measure_values(plan: Plan, raws: Sequence[Any]) -> tuple[MeasureValue, ...]:
    return tuple(
        MeasureValue(measure.name, measure.unit, _evaluate(plan, plan.values[measure.name], raws))
        for measure in plan.measures
    )


def shape_result(
    plan: Plan, rows: Sequence[AnyRow], totals: AnyRow, rollup_built_at: datetime | None = None
) -> AnalyticsResult:
    """The result records from the raw aggregates of the rows and totals statements."""
    routed = [source for source in plan.sources if source in plan.rollups]
    source: ResultSource = (
        "raw" if not routed else "rollup" if len(routed) == len(plan.sources) else "mixed"
    )
    keys = len(plan.keys)
    bucketed = 1 if plan.granularity else 0
    shaped = tuple(
        AnalyticsRow(
            time=_bucket_start(plan, row[0]) if bucketed else None,
            dimensions=tuple(
                DimensionValue(dimension.name, row[bucketed + index])
                for index, dimension in enumerate(plan.dimensions)
            ),
            measures=_measure_values(plan, row[keys:]),
        )
        for row in rows[: plan.limit]
    )
    return AnalyticsResult(
        measures=plan.measures,
        dimensions=plan.dimensions,
        granularity=plan.granularity,
        timezone=plan.timezone,
        start=plan.start,
        end=plan.end,
        rows=shaped,
        totals=_measure_values(plan, tuple(totals)),
        truncated=len(rows) > plan.limit,
        source=source,
        rollups=tuple(plan.rollups[name].name for name in routed),
        rollup_built_at=rollup_built_at if routed else None,
    )
