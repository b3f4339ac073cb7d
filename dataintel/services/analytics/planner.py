"""Planning: an analytics query checked against the catalog, ready to compile.

Every mistake is BAD_USER_INPUT naming the valid choices, raised before any SQL exists. A
plan holds the raw aggregates (sums, counts, distinct counts per source) that every asked
measure is computed from, the zone's clock for the buckets and the filters split into
conditions on rows and on groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any, Literal
from zoneinfo import ZoneInfo

from dataintel.errors import BadUserInputError
from dataintel.services.analytics.catalog import (
    TIME_MEMBER,
    AnalyticsCatalog,
    DimensionDefinition,
    MeasureDefinition,
    RollupDefinition,
    common_names,
)
from dataintel.services.time_buckets import GRANULARITIES, ZoneClock, zone_named

FilterValue = str | float | datetime

DEFAULT_LIMIT = 1000
MAXIMUM_LIMIT = 10_000

FILTER_OPERATORS = ("equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "between")
STRING_OPERATORS = ("equals", "not_equals", "in", "not_in")

# Without a date range, bucketing follows the offset changes of these years; a range
# narrows them (and the statement). Beyond CLOCK_YEARS the nearest offset holds, which
# bounds the work a far-flung date range can ask for.
OPEN_RANGE_YEARS = (1970, 2100)
CLOCK_YEARS = (1900, 2200)
MAXIMUM_FILTER_VALUES = 1000

_DOMAIN = "analytics"
_SINGLE_VALUE_OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte")


@dataclass(frozen=True, slots=True)
class AnalyticsFilter:
    """A condition on a dimension (on rows) or on a measure (on groups, like HAVING).

    Values are strings for string dimensions, datetimes for time dimensions (naive ones are
    wall-clock times in the query's time zone) and numbers for measures.
    """

    member: str
    operator: str
    values: tuple[FilterValue, ...]


@dataclass(frozen=True, slots=True)
class AnalyticsOrder:
    """Sort by a measure, a grouped dimension or the time bucket (``time``)."""

    member: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    """Measures by dimensions and time bucket; start inclusive, end exclusive."""

    measures: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    granularity: str | None = None
    time_dimension: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    timezone: str = "UTC"
    filters: tuple[AnalyticsFilter, ...] = ()
    order_by: tuple[AnalyticsOrder, ...] = ()
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class Raw:
    """One SQL aggregate of one source, the part measures are computed from."""

    source: str
    function: Literal["sum", "count", "count_distinct"]
    column: str
    where: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Additive:
    raw: Raw
    scale: Fraction


@dataclass(frozen=True, slots=True)
class Quotient:
    numerator: Additive
    denominator: Additive
    scale: Fraction


Value = Additive | Quotient


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    measures: tuple[MeasureDefinition, ...]
    values: Mapping[str, Value]
    raws: tuple[Raw, ...]
    sources: tuple[str, ...]
    dimensions: tuple[DimensionDefinition, ...]
    granularity: str | None
    time_dimension: DimensionDefinition | None
    clock: ZoneClock
    timezone: str
    start: datetime | None
    end: datetime | None
    dimension_filters: tuple[tuple[DimensionDefinition, Condition], ...]
    measure_filters: tuple[tuple[Value, Condition], ...]
    order: tuple[tuple[str, bool], ...]
    limit: int
    catalog: AnalyticsCatalog
    rollups: Mapping[str, RollupDefinition] = field(default_factory=dict)
    """The rollup that answers for a source, by source; the others read raw rows."""

    @property
    def keys(self) -> tuple[str, ...]:
        """Labels of the grouping columns: the bucket, then the dimensions."""
        bucket = ("bucket",) if self.granularity else ()
        return (*bucket, *(f"dimension_{index}" for index in range(len(self.dimensions))))

    def label(self, raw: Raw) -> str:
        """The column label of a raw aggregate."""
        return f"value_{self.raws.index(raw)}"


def _bad(message: str, **details: Any) -> BadUserInputError:
    return BadUserInputError(message, domain=_DOMAIN, details=details)


def _choices(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


def _unknown(kind: str, argument: str, unknown: Sequence[str], valid: Sequence[str]) -> None:
    if unknown:
        quoted = ", ".join(f"'{name}'" for name in unknown)
        raise _bad(
            f"Unknown {kind} {quoted}; valid {kind}s: {_choices(valid)}.",
            argument=argument,
            unknown=list(unknown),
            valid=list(valid),
        )


def value_of(catalog: AnalyticsCatalog, measure: MeasureDefinition) -> Value:
    """How a measure is computed from raw aggregates."""
    if measure.aggregation == "ratio":
        numerator = value_of(catalog, catalog.measures[measure.numerator or ""])
        denominator = value_of(catalog, catalog.measures[measure.denominator or ""])
        # The catalog admits only sum, count and count_distinct measures in a ratio.
        assert isinstance(numerator, Additive)
        assert isinstance(denominator, Additive)
        return Quotient(numerator, denominator, measure.scale)
    where = tuple((catalog.dimensions[name].column, values) for name, values in measure.where)
    source, column = measure.source or "", measure.column or ""
    if measure.aggregation == "avg":
        total = Additive(Raw(source, "sum", column, where), measure.scale)
        count = Additive(Raw(source, "count", column, where), Fraction(1))
        return Quotient(total, count, Fraction(1))
    function: Literal["sum", "count", "count_distinct"]
    if measure.aggregation == "sum":
        function = "sum"
    elif measure.aggregation == "count":
        function = "count"
    else:
        function = "count_distinct"
    return Additive(Raw(source, function, column, where), measure.scale)


def raws_of(value: Value) -> tuple[Raw, ...]:
    """The raw aggregates a value is computed from."""
    if isinstance(value, Additive):
        return (value.raw,)
    return (value.numerator.raw, value.denominator.raw)


def _clock(zone: ZoneInfo, query: AnalyticsQuery) -> ZoneClock:
    given = [
        moment.year
        for moment in (
            query.start,
            query.end,
            *(value for condition in query.filters for value in condition.values),
        )
        if isinstance(moment, datetime)
    ]
    first = min([query.start.year if query.start else OPEN_RANGE_YEARS[0], *given]) - 1
    last = max([query.end.year if query.end else OPEN_RANGE_YEARS[1], *given]) + 1
    first = min(max(first, CLOCK_YEARS[0]), CLOCK_YEARS[1])
    last = max(min(last, CLOCK_YEARS[1]), first)
    return ZoneClock(zone, first, last)


def _moment(clock: ZoneClock, value: datetime, argument: str) -> datetime:
    try:
        return clock.resolve(value)
    except OverflowError:
        raise _bad(
            f"{value.isoformat()} is out of range in {clock.zone.key}.", argument=argument
        ) from None


def _condition(
    member: str, operator: str, values: tuple[FilterValue, ...], kind: str, clock: ZoneClock
) -> Condition:
    if operator not in FILTER_OPERATORS:
        raise _bad(
            f"Unknown filter operator '{operator}'; valid operators: {_choices(FILTER_OPERATORS)}.",
            argument="operator",
            valid=list(FILTER_OPERATORS),
        )
    if kind == "string" and operator not in STRING_OPERATORS:
        raise _bad(
            f"Filter on '{member}': a string dimension takes {_choices(STRING_OPERATORS)},"
            f" not {operator}.",
            argument="operator",
            valid=list(STRING_OPERATORS),
        )
    count = len(values)
    if operator in _SINGLE_VALUE_OPERATORS and count != 1:
        raise _bad(f"Filter on '{member}': {operator} takes exactly one value, not {count}.")
    if operator == "between" and count != 2:
        raise _bad(f"Filter on '{member}': between takes two values (low, high), not {count}.")
    if not 1 <= count <= MAXIMUM_FILTER_VALUES:
        raise _bad(f"Filter on '{member}': {operator} takes 1 to {MAXIMUM_FILTER_VALUES} values.")
    if kind == "string" and all(isinstance(value, str) for value in values):
        return Condition(operator, values)
    if kind == "time" and all(isinstance(value, datetime) for value in values):
        moments = (value for value in values if isinstance(value, datetime))
        return Condition(operator, tuple(_moment(clock, value, "filters") for value in moments))
    numbers = [value for value in values if isinstance(value, int | float)]
    if (
        kind == "measure"
        and len(numbers) == count
        and not any(isinstance(value, bool) for value in numbers)
    ):
        return Condition(operator, tuple(float(value) for value in numbers))
    wanted = {"string": "strings", "time": "datetimes"}.get(kind, "numbers")
    raise _bad(f"Filter on '{member}' takes {wanted} (it is a {kind}).", member=member)


def _check_names(catalog: AnalyticsCatalog, query: AnalyticsQuery) -> None:
    if not query.measures:
        raise _bad(
            f"Give at least one measure; valid measures: {_choices(catalog.measures)}.",
            argument="measures",
            valid=list(catalog.measures),
        )
    measures = list(catalog.measures)
    _unknown("measure", "measures", [n for n in query.measures if n not in measures], measures)
    strings = [name for name, found in catalog.dimensions.items() if found.type == "string"]
    _unknown("dimension", "dimensions", [n for n in query.dimensions if n not in strings], strings)
    if query.granularity is not None and query.granularity not in GRANULARITIES:
        raise _bad(
            f"Unknown granularity '{query.granularity}'; valid granularities:"
            f" {_choices(GRANULARITIES)}.",
            argument="granularity",
            valid=list(GRANULARITIES),
        )
    times = [name for name, found in catalog.dimensions.items() if found.type == "time"]
    if query.time_dimension is not None and query.time_dimension not in times:
        _unknown("time dimension", "timeDimension", [query.time_dimension], times)
    if not 1 <= query.limit <= MAXIMUM_LIMIT:
        raise _bad(
            f"'limit' must be between 1 and {MAXIMUM_LIMIT}; it was {query.limit}.",
            argument="limit",
            maximum=MAXIMUM_LIMIT,
        )


def _filters(
    catalog: AnalyticsCatalog, filters: Iterable[AnalyticsFilter], clock: ZoneClock
) -> tuple[list[tuple[DimensionDefinition, Condition]], list[tuple[str, Condition]]]:
    """The dimension filters (on rows) and the measure filters (on groups)."""
    members = [*catalog.measures, *catalog.dimensions]
    on_rows: list[tuple[DimensionDefinition, Condition]] = []
    on_groups: list[tuple[str, Condition]] = []
    for item in filters:
        if item.member not in members:
            _unknown("member", "filters", [item.member], members)
        dimension = catalog.dimensions.get(item.member)
        kind = dimension.type if dimension is not None else "measure"
        condition = _condition(item.member, item.operator, item.values, kind, clock)
        if dimension is not None:
            on_rows.append((dimension, condition))
        else:
            on_groups.append((item.member, condition))
    return on_rows, on_groups


def _order(
    catalog: AnalyticsCatalog, query: AnalyticsQuery, grouped: Sequence[str]
) -> list[tuple[str, bool]]:
    sortable = [*([TIME_MEMBER] if query.granularity else []), *catalog.measures, *grouped]
    for item in query.order_by:
        if item.member not in sortable:
            raise _bad(
                f"Cannot order by '{item.member}'; order by a measure, a grouped dimension"
                f" or '{TIME_MEMBER}' with a granularity: {_choices(sortable)}.",
                argument="orderBy",
                valid=sortable,
            )
    return [(item.member, item.descending) for item in query.order_by]


def _check_reachable(
    catalog: AnalyticsCatalog,
    measures: Sequence[MeasureDefinition],
    sources: Sequence[str],
    dimensions: Iterable[str],
) -> None:
    reached = {name: catalog.reachable(name) for name in sources}
    common = common_names(reached.values())
    for name in dict.fromkeys(dimensions):
        missing = [source for source in sources if name not in reached[source]]
        if not missing:
            continue
        kind = catalog.dimensions[name].type
        valid = [found for found in common if catalog.dimensions[found].type == kind]
        users = [m.name for m in measures if set(catalog.sources_of(m)) & set(missing)]
        raise _bad(
            f"Dimension '{name}' is not reachable from source {_choices(missing)} (of"
            f" measure {_choices(users)}); {kind} dimensions reachable from every"
            f" measure's source: {_choices(valid)}.",
            argument="dimensions",
            dimension=name,
            sources=missing,
            valid=valid,
        )


def plan_query(catalog: AnalyticsCatalog, query: AnalyticsQuery) -> Plan:
    """The query checked against the catalog; BAD_USER_INPUT names what is wrong and why."""
    _check_names(catalog, query)
    requested = tuple(dict.fromkeys(query.measures))
    grouped = tuple(dict.fromkeys(query.dimensions))
    zone = zone_named(query.timezone, _DOMAIN)
    clock = _clock(zone, query)
    start = _moment(clock, query.start, "from") if query.start is not None else None
    end = _moment(clock, query.end, "to") if query.end is not None else None
    if start is not None and end is not None and start >= end:
        raise _bad("The date range is empty: 'from' must come before 'to'.", argument="to")
    dimension_filters, measure_filters = _filters(catalog, query.filters, clock)
    order = _order(catalog, query, grouped)

    # Measures filtered or ordered by are computed too, though not returned.
    needed = [
        catalog.measures[name]
        for name in dict.fromkeys(
            [
                *requested,
                *(name for name, _ in measure_filters),
                *(member for member, _ in order if member in catalog.measures),
            ]
        )
    ]
    sources = tuple(dict.fromkeys(s for m in needed for s in catalog.sources_of(m)))
    filtered = (dimension.name for dimension, _ in dimension_filters)
    time = [query.time_dimension] if query.time_dimension else []
    _check_reachable(catalog, needed, sources, [*grouped, *filtered, *time])

    values = {measure.name: value_of(catalog, measure) for measure in needed}
    raws = tuple(dict.fromkeys(raw for value in values.values() for raw in raws_of(value)))
    return Plan(
        measures=tuple(catalog.measures[name] for name in requested),
        values=values,
        raws=raws,
        sources=sources,
        dimensions=tuple(catalog.dimensions[name] for name in grouped),
        granularity=query.granularity,
        time_dimension=catalog.dimensions[query.time_dimension] if query.time_dimension else None,
        clock=clock,
        timezone=str(zone.key),
        start=start,
        end=end,
        dimension_filters=tuple(dimension_filters),
        measure_filters=tuple((values[name], condition) for name, condition in measure_filters),
        order=tuple(order),
        limit=query.limit,
        catalog=catalog,
    )
