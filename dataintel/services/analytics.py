"""Analytics (after Cube's semantic layer): measures over dimensions and time buckets.

The catalog is declarative YAML (sources, dimensions, measures) that an operator extends
without code. A query names measures, dimensions, a time granularity in a time zone, a date
range, filters, an order and a limit; it compiles to one statement for the rows (every
source's aggregate merged on the dimension values) and one for the totals.

Time buckets are computed from UTC with the zone's offsets, which Python's zoneinfo gives
and the statement carries as literals, so SQLite and PostgreSQL bucket identically and
neither needs its own time zone data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import BadUserInputError
from dataintel.services.time_buckets import GRANULARITIES, ZoneClock, bucket_key, zone_named
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, read
from dataintel.store.rows import AnyRow
from dataintel.store.types import UTCDateTime

Aggregation = Literal["sum", "count", "count_distinct", "avg", "ratio"]
DimensionType = Literal["string", "time"]
FilterValue = str | float | datetime

BUILT_IN_CATALOG = "analytics_catalog.yaml"
DEFAULT_LIMIT = 1000
MAXIMUM_LIMIT = 10_000
TIME_MEMBER = "time"
"""The name by which order_by refers to the time bucket; no measure or dimension may take it."""

FILTER_OPERATORS = ("equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "between")
STRING_OPERATORS = ("equals", "not_equals", "in", "not_in")

# Without a date range, bucketing follows the offset changes of these years; a range
# narrows them (and the statement). Beyond CLOCK_YEARS the nearest offset holds, which
# bounds the work a far-flung date range can ask for.
OPEN_RANGE_YEARS = (1970, 2100)
CLOCK_YEARS = (1900, 2200)
MAXIMUM_FILTER_VALUES = 1000

_DOMAIN = "analytics"
_NAME = r"^[a-z][a-z0-9_]*$"
_SINGLE_VALUE_OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte")
_ADDITIVE: tuple[Aggregation, ...] = ("sum", "count", "count_distinct")
# Only the demo business's tables: the catalog must never reach users, keys or the audit log.
_TABLES: Mapping[str, sa.Table] = {table.name: table for table in tables.DEMO_TABLES}


class AnalyticsCatalogError(ValueError):
    """A catalog file that cannot be loaded; raised when the app or CLI starts."""


# --- The catalog -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinDefinition:
    """A many-to-one join: a key on a table already in the source references ``table``."""

    table: str
    key: str
    references: str
    optional: bool


@dataclass(frozen=True, slots=True)
class SourceDefinition:
    """The rows measures aggregate: a base table and its joins, with a default time."""

    name: str
    description: str
    table: str
    joins: tuple[JoinDefinition, ...]
    time_dimension: str

    @property
    def tables(self) -> tuple[str, ...]:
        """The base table, then every joined table."""
        return (self.table, *(join.table for join in self.joins))


@dataclass(frozen=True, slots=True)
class DimensionDefinition:
    """A column to group or filter by."""

    name: str
    description: str
    type: DimensionType
    column: str

    @property
    def table(self) -> str:
        """The table that holds the column."""
        return self.column.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class MeasureDefinition:
    """An aggregate over a source's rows, or a ratio of two other measures."""

    name: str
    description: str
    unit: str
    aggregation: Aggregation
    source: str | None
    column: str | None
    where: tuple[tuple[str, tuple[str, ...]], ...]
    numerator: str | None
    denominator: str | None
    scale: Fraction


class AnalyticsCatalog:
    """The sources, dimensions and measures in force, checked for consistency."""

    def __init__(
        self,
        sources: Iterable[SourceDefinition],
        dimensions: Iterable[DimensionDefinition],
        measures: Iterable[MeasureDefinition],
    ) -> None:
        self.sources: Mapping[str, SourceDefinition] = {source.name: source for source in sources}
        self.dimensions: Mapping[str, DimensionDefinition] = {
            dimension.name: dimension for dimension in dimensions
        }
        self.measures: Mapping[str, MeasureDefinition] = {
            measure.name: measure for measure in measures
        }

    def sources_of(self, measure: MeasureDefinition) -> tuple[str, ...]:
        """The sources whose rows the measure aggregates (two for a cross-source ratio)."""
        if measure.source is not None:
            return (measure.source,)
        parts = (measure.numerator, measure.denominator)
        found = (self.sources_of(self.measures[part]) for part in parts if part is not None)
        return tuple(dict.fromkeys(source for sources in found for source in sources))

    def reachable(self, source: str) -> tuple[str, ...]:
        """Names of the dimensions whose table the source reaches."""
        reached = self.sources[source].tables
        return tuple(
            name for name, dimension in self.dimensions.items() if dimension.table in reached
        )

    def dimensions_of(self, measure: MeasureDefinition) -> tuple[str, ...]:
        """Names of the dimensions reachable from every source of the measure."""
        return _common(self.reachable(source) for source in self.sources_of(measure))


def _common(groups: Iterable[Sequence[str]]) -> tuple[str, ...]:
    listed = list(groups)
    if not listed:
        return ()
    return tuple(name for name in listed[0] if all(name in group for group in listed[1:]))


class _JoinSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: str
    key: str
    references: str
    optional: bool = False


class _SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    description: str = Field(min_length=1)
    table: str
    joins: list[_JoinSpec] = Field(default_factory=list)
    time_dimension: str


class _DimensionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    description: str = Field(min_length=1)
    type: DimensionType
    column: str


class _MeasureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    description: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    aggregation: Aggregation
    source: str | None = None
    column: str | None = None
    where: dict[str, list[str]] = Field(default_factory=dict)
    numerator: str | None = None
    denominator: str | None = None
    scale: float | None = Field(default=None, gt=0)


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[_SourceSpec] = Field(default_factory=list)
    dimensions: list[_DimensionSpec] = Field(default_factory=list)
    measures: list[_MeasureSpec] = Field(default_factory=list)


def _text(description: str) -> str:
    return " ".join(description.split())


def _table_column(reference: str, where: str) -> sa.Column[Any]:
    table_name, _, column_name = reference.partition(".")
    table = _TABLES.get(table_name)
    if table is None:
        raise AnalyticsCatalogError(
            f"{where}: '{reference}' is not table.column of a known table;"
            f" tables: {', '.join(sorted(_TABLES))}."
        )
    if column_name not in table.c:
        raise AnalyticsCatalogError(
            f"{where}: table '{table_name}' has no column '{column_name}';"
            f" columns: {', '.join(table.c.keys())}."
        )
    return table.c[column_name]


def _is_number(column: sa.Column[Any]) -> bool:
    return isinstance(column.type, sa.Integer | sa.Numeric)


def _dimension(spec: _DimensionSpec, origin: str) -> DimensionDefinition:
    where = f"{origin}: dimension '{spec.name}'"
    column = _table_column(spec.column, where)
    if spec.type == "time" and not isinstance(column.type, UTCDateTime):
        raise AnalyticsCatalogError(f"{where}: a time dimension needs a UTC timestamp column.")
    if spec.type == "string" and not isinstance(column.type, sa.String):
        raise AnalyticsCatalogError(f"{where}: a string dimension needs a text column.")
    return DimensionDefinition(spec.name, _text(spec.description), spec.type, spec.column)


def _source(
    spec: _SourceSpec, origin: str, dimensions: Mapping[str, DimensionDefinition]
) -> SourceDefinition:
    where = f"{origin}: source '{spec.name}'"
    if spec.table not in _TABLES:
        raise AnalyticsCatalogError(
            f"{where}: table '{spec.table}' is not one of {', '.join(sorted(_TABLES))}."
        )
    reached = [spec.table]
    joins: list[JoinDefinition] = []
    for join in spec.joins:
        if join.table not in _TABLES or join.table in reached:
            raise AnalyticsCatalogError(
                f"{where}: join table '{join.table}' is unknown or already in the source."
            )
        left, right = join.key, join.references
        _table_column(left, where)
        _table_column(right, where)
        if left.partition(".")[0] not in reached or right.partition(".")[0] != join.table:
            raise AnalyticsCatalogError(
                f"{where}: the join's key {left} must be on a table already in the source"
                f" ({', '.join(reached)}) and what it references, {right}, on '{join.table}'."
            )
        reached.append(join.table)
        joins.append(JoinDefinition(join.table, left, right, join.optional))
    time = dimensions.get(spec.time_dimension)
    if time is None or time.type != "time":
        times = sorted(name for name, found in dimensions.items() if found.type == "time")
        raise AnalyticsCatalogError(
            f"{where}: time_dimension '{spec.time_dimension}' is not a time dimension;"
            f" time dimensions: {', '.join(times)}."
        )
    if time.table not in reached:
        raise AnalyticsCatalogError(
            f"{where}: time dimension '{time.name}' is on table '{time.table}', which the"
            f" source does not reach ({', '.join(reached)})."
        )
    return SourceDefinition(
        spec.name, _text(spec.description), spec.table, tuple(joins), spec.time_dimension
    )


def _measure(
    spec: _MeasureSpec,
    origin: str,
    sources: Mapping[str, SourceDefinition],
    dimensions: Mapping[str, DimensionDefinition],
    specs: Mapping[str, _MeasureSpec],
) -> MeasureDefinition:
    where = f"{origin}: measure '{spec.name}'"
    scale = Fraction(str(spec.scale)) if spec.scale is not None else Fraction(1)
    if spec.aggregation == "ratio":
        if spec.source or spec.column or spec.where:
            raise AnalyticsCatalogError(f"{where}: a ratio takes no source, column or where.")
        for part in (spec.numerator, spec.denominator):
            found = specs.get(part or "")
            if found is None or found.aggregation not in _ADDITIVE:
                additive = sorted(
                    name for name, other in specs.items() if other.aggregation in _ADDITIVE
                )
                raise AnalyticsCatalogError(
                    f"{where}: numerator and denominator must name sum, count or count_distinct"
                    f" measures; '{part}' does not. Such measures: {', '.join(additive)}."
                )
        return MeasureDefinition(
            spec.name,
            _text(spec.description),
            spec.unit,
            "ratio",
            None,
            None,
            (),
            spec.numerator,
            spec.denominator,
            scale,
        )
    if spec.numerator or spec.denominator:
        raise AnalyticsCatalogError(f"{where}: only a ratio takes a numerator and denominator.")
    source = sources.get(spec.source or "")
    if source is None:
        raise AnalyticsCatalogError(
            f"{where}: source '{spec.source}' is not one of {', '.join(sorted(sources))}."
        )
    if spec.column is None and spec.aggregation != "count":
        raise AnalyticsCatalogError(f"{where}: aggregation '{spec.aggregation}' needs a column.")
    column = spec.column or f"{source.table}.{_primary_key(source.table)}"
    if _table_column(column, where).table.name not in source.tables:
        raise AnalyticsCatalogError(
            f"{where}: column '{column}' is on a table that source '{source.name}' does not"
            f" reach ({', '.join(source.tables)})."
        )
    if spec.aggregation in ("sum", "avg") and not _is_number(_table_column(column, where)):
        raise AnalyticsCatalogError(f"{where}: '{spec.aggregation}' needs a numeric column.")
    conditions: list[tuple[str, tuple[str, ...]]] = []
    for name, values in sorted(spec.where.items()):
        dimension = dimensions.get(name)
        if dimension is None or dimension.type != "string":
            strings = sorted(key for key, found in dimensions.items() if found.type == "string")
            raise AnalyticsCatalogError(
                f"{where}: where '{name}' is not a string dimension; they are:"
                f" {', '.join(strings)}."
            )
        if dimension.table not in source.tables:
            raise AnalyticsCatalogError(
                f"{where}: where dimension '{name}' is not reachable from source"
                f" '{source.name}' (it reaches {', '.join(source.tables)})."
            )
        if not values:
            raise AnalyticsCatalogError(f"{where}: where '{name}' needs at least one value.")
        conditions.append((name, tuple(values)))
    return MeasureDefinition(
        spec.name,
        _text(spec.description),
        spec.unit,
        spec.aggregation,
        source.name,
        column,
        tuple(conditions),
        None,
        None,
        scale,
    )


def _primary_key(table: str) -> str:
    return str(next(iter(_TABLES[table].primary_key.columns)).name)


def _read_file(text: str, origin: str) -> _FileSpec:
    try:
        loaded = yaml.safe_load(text)
        return _FileSpec.model_validate(loaded if loaded is not None else {})
    except yaml.YAMLError as error:
        raise AnalyticsCatalogError(f"{origin} is not valid YAML: {error}") from None
    except ValidationError as error:
        # Each problem names its entry (measures.0.description), not pydantic's banner.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise AnalyticsCatalogError(f"{origin} is not an analytics catalog: {problems}.") from None


def _by_name(items: Iterable[Any], origin: str, kind: str) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for item in items:
        if item.name in found:
            raise AnalyticsCatalogError(f"{origin}: {kind} '{item.name}' is declared twice.")
        found[item.name] = (item, origin)
    return found


def build_catalog(files: Sequence[tuple[str, str]]) -> AnalyticsCatalog:
    """A checked catalog from YAML texts (text, origin), later files overriding by name."""
    sources: dict[str, tuple[_SourceSpec, str]] = {}
    dimensions: dict[str, tuple[_DimensionSpec, str]] = {}
    measures: dict[str, tuple[_MeasureSpec, str]] = {}
    for text, origin in files:
        spec = _read_file(text, origin)
        sources.update(_by_name(spec.sources, origin, "source"))
        dimensions.update(_by_name(spec.dimensions, origin, "dimension"))
        measures.update(_by_name(spec.measures, origin, "measure"))
    for name in sorted(set(dimensions) & set(measures)):
        raise AnalyticsCatalogError(
            f"{dimensions[name][1]}: dimension '{name}' has the name of a measure of"
            f" {measures[name][1]}; a name is either a measure or a dimension, not both."
        )
    for name, (_spec, origin) in [*dimensions.items(), *measures.items()]:
        if name == TIME_MEMBER:
            raise AnalyticsCatalogError(
                f"{origin}: '{TIME_MEMBER}' is reserved for the time bucket; rename it."
            )
    checked_dimensions = {
        name: _dimension(spec, origin) for name, (spec, origin) in dimensions.items()
    }
    checked_sources = {
        name: _source(spec, origin, checked_dimensions) for name, (spec, origin) in sources.items()
    }
    specs = {name: spec for name, (spec, _origin) in measures.items()}
    checked_measures = [
        _measure(spec, origin, checked_sources, checked_dimensions, specs)
        for spec, origin in measures.values()
    ]
    return AnalyticsCatalog(checked_sources.values(), checked_dimensions.values(), checked_measures)


def load_catalog(path: Path | None = None) -> AnalyticsCatalog:
    """The built-in catalog, with the entries of ``path`` added or replacing them by name."""
    package = resources.files("dataintel.services")
    files = [(package.joinpath(BUILT_IN_CATALOG).read_text("utf-8"), BUILT_IN_CATALOG)]
    if path is not None:
        try:
            files.append((path.read_text("utf-8"), str(path)))
        except OSError as error:
            raise AnalyticsCatalogError(
                f"cannot read the analytics catalog {path}: {error}"
            ) from None
    return build_catalog(files)


# --- Queries and results -----------------------------------------------------------------


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


# --- Planning: a query checked against the catalog ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Raw:
    """One SQL aggregate of one source, the part measures are computed from."""

    source: str
    function: Literal["sum", "count", "count_distinct"]
    column: str
    where: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class _Additive:
    raw: _Raw
    scale: Fraction


@dataclass(frozen=True, slots=True)
class _Quotient:
    numerator: _Additive
    denominator: _Additive
    scale: Fraction


_Value = _Additive | _Quotient


@dataclass(frozen=True, slots=True)
class _Condition:
    operator: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    measures: tuple[MeasureDefinition, ...]
    values: Mapping[str, _Value]
    raws: tuple[_Raw, ...]
    sources: tuple[str, ...]
    dimensions: tuple[DimensionDefinition, ...]
    granularity: str | None
    time_dimension: DimensionDefinition | None
    clock: ZoneClock
    timezone: str
    start: datetime | None
    end: datetime | None
    dimension_filters: tuple[tuple[DimensionDefinition, _Condition], ...]
    measure_filters: tuple[tuple[_Value, _Condition], ...]
    order: tuple[tuple[str, bool], ...]
    limit: int
    catalog: AnalyticsCatalog

    @property
    def keys(self) -> tuple[str, ...]:
        """Labels of the grouping columns: the bucket, then the dimensions."""
        bucket = ("bucket",) if self.granularity else ()
        return (*bucket, *(f"dimension_{index}" for index in range(len(self.dimensions))))

    def label(self, raw: _Raw) -> str:
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


def _value_of(catalog: AnalyticsCatalog, measure: MeasureDefinition) -> _Value:
    if measure.aggregation == "ratio":
        numerator = _value_of(catalog, catalog.measures[measure.numerator or ""])
        denominator = _value_of(catalog, catalog.measures[measure.denominator or ""])
        # The catalog admits only sum, count and count_distinct measures in a ratio.
        assert isinstance(numerator, _Additive)
        assert isinstance(denominator, _Additive)
        return _Quotient(numerator, denominator, measure.scale)
    where = tuple((catalog.dimensions[name].column, values) for name, values in measure.where)
    source, column = measure.source or "", measure.column or ""
    if measure.aggregation == "avg":
        total = _Additive(_Raw(source, "sum", column, where), measure.scale)
        count = _Additive(_Raw(source, "count", column, where), Fraction(1))
        return _Quotient(total, count, Fraction(1))
    function: Literal["sum", "count", "count_distinct"]
    if measure.aggregation == "sum":
        function = "sum"
    elif measure.aggregation == "count":
        function = "count"
    else:
        function = "count_distinct"
    return _Additive(_Raw(source, function, column, where), measure.scale)


def _raws_of(value: _Value) -> tuple[_Raw, ...]:
    if isinstance(value, _Additive):
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
) -> _Condition:
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
        return _Condition(operator, values)
    if kind == "time" and all(isinstance(value, datetime) for value in values):
        moments = (value for value in values if isinstance(value, datetime))
        return _Condition(operator, tuple(_moment(clock, value, "filters") for value in moments))
    numbers = [value for value in values if isinstance(value, int | float)]
    if (
        kind == "measure"
        and len(numbers) == count
        and not any(isinstance(value, bool) for value in numbers)
    ):
        return _Condition(operator, tuple(float(value) for value in numbers))
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
) -> tuple[list[tuple[DimensionDefinition, _Condition]], list[tuple[str, _Condition]]]:
    """The dimension filters (on rows) and the measure filters (on groups)."""
    members = [*catalog.measures, *catalog.dimensions]
    on_rows: list[tuple[DimensionDefinition, _Condition]] = []
    on_groups: list[tuple[str, _Condition]] = []
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
    common = _common(reached.values())
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


def plan_query(catalog: AnalyticsCatalog, query: AnalyticsQuery) -> _Plan:
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

    values = {measure.name: _value_of(catalog, measure) for measure in needed}
    raws = tuple(dict.fromkeys(raw for value in values.values() for raw in _raws_of(value)))
    return _Plan(
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


# --- Compiling: one statement for the rows, one for the totals ----------------------------


def _column(reference: str) -> sa.Column[Any]:
    table, _, column = reference.partition(".")
    return _TABLES[table].c[column]


def _from_clause(source: SourceDefinition) -> sa.FromClause:
    joined: sa.FromClause = _TABLES[source.table]
    for join in source.joins:
        condition = _column(join.key) == _column(join.references)
        joined = joined.join(_TABLES[join.table], condition, isouter=join.optional)
    return joined


def _bucket(plan: _Plan, moment: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    periods = plan.clock.periods_between(plan.start, plan.end)
    return bucket_key(moment, plan.granularity or "day", periods, dialect)


def _compare(
    expression: sa.ColumnElement[Any],
    condition: _Condition,
    bind: Callable[[Any], Any],
) -> sa.ColumnElement[bool]:
    values = [bind(value) for value in condition.values]
    first = values[0]
    compared: sa.ColumnElement[bool]
    match condition.operator:
        case "equals":
            compared = expression == first
        case "not_equals":
            # Null is unequal to everything: anonymous events are not in europe.
            compared = sa.or_(expression != first, expression.is_(None))
        case "in":
            compared = expression.in_(values)
        case "not_in":
            compared = sa.or_(expression.not_in(values), expression.is_(None))
        case "gt":
            compared = expression > first
        case "gte":
            compared = expression >= first
        case "lt":
            compared = expression < first
        case "lte":
            compared = expression <= first
        case _:
            compared = sa.and_(expression >= first, expression <= values[1])
    return compared


def _as_is(value: Any) -> Any:
    return value


def _number(value: Any) -> sa.ColumnElement[float]:
    return sa.literal(value, sa.Float())


def _input(raw: _Raw) -> sa.ColumnElement[Any]:
    column = _column(raw.column)
    if not raw.where:
        return column
    condition = sa.and_(*(_column(reference).in_(values) for reference, values in raw.where))
    return sa.case((condition, column))


def _aggregate(raw: _Raw, value: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    if raw.function == "sum":
        return sa.func.sum(value)
    if raw.function == "count":
        return sa.func.count(value)
    return sa.func.count(sa.distinct(value))


def _source_rows(
    plan: _Plan, source_name: str, dialect: str, *, keyed: bool, name: str
) -> sa.Subquery:
    source = plan.catalog.sources[source_name]
    time = plan.time_dimension or plan.catalog.dimensions[source.time_dimension]
    moment = _column(time.column)
    columns: list[sa.ColumnElement[Any]] = []
    if keyed and plan.granularity:
        columns.append(_bucket(plan, moment, dialect).label("bucket"))
    if keyed:
        columns.extend(
            _column(dimension.column).label(f"dimension_{index}")
            for index, dimension in enumerate(plan.dimensions)
        )
    columns.extend(
        _input(raw).label(f"input_{index}")
        for index, raw in enumerate(plan.raws)
        if raw.source == source_name
    )
    conditions: list[sa.ColumnElement[bool]] = []
    if plan.start is not None:
        conditions.append(moment >= plan.start)
    if plan.end is not None:
        conditions.append(moment < plan.end)
    conditions.extend(
        _compare(_column(dimension.column), condition, _as_is)
        for dimension, condition in plan.dimension_filters
    )
    statement = sa.select(*columns).select_from(_from_clause(source)).where(*conditions)
    return statement.subquery(name)


def _grouped(plan: _Plan, rows_of: Mapping[str, sa.FromClause]) -> sa.Subquery:
    """Every source's aggregates by bucket and dimensions, merged on those keys."""
    branches: list[sa.Select[Any]] = []
    for source in plan.sources:
        rows = rows_of[source]
        keys = [rows.c[key] for key in plan.keys]
        values = [
            (
                _aggregate(raw, rows.c[f"input_{index}"])
                if raw.source == source
                # Typed, so that PostgreSQL unites the branches' columns as numbers.
                else sa.cast(sa.null(), sa.Numeric())
            ).label(f"value_{index}")
            for index, raw in enumerate(plan.raws)
        ]
        branch = sa.select(*keys, *values)
        branches.append(branch.group_by(*keys) if keys else branch)
    if len(branches) == 1:
        return branches[0].subquery("grouped")
    merged = sa.union_all(*branches).subquery("merged")
    keys = [merged.c[key] for key in plan.keys]
    maxima = [
        sa.func.max(merged.c[f"value_{index}"]).label(f"value_{index}")
        for index in range(len(plan.raws))
    ]
    merging = sa.select(*keys, *maxima)
    return (merging.group_by(*keys) if keys else merging).subquery("grouped")


def _scaled_sql(expression: sa.ColumnElement[Any], scale: Fraction) -> sa.ColumnElement[Any]:
    # The same floating-point steps as _scaled, so SQL filters see the values clients see.
    if scale.numerator != 1:
        expression = expression * sa.literal_column(str(scale.numerator), sa.Float())
    if scale.denominator != 1:
        expression = expression / sa.literal_column(str(scale.denominator), sa.Float())
    return expression


def _value_sql(plan: _Plan, value: _Value, grouped: sa.Subquery) -> sa.ColumnElement[Any]:
    def additive(part: _Additive) -> sa.ColumnElement[Any]:
        raw = grouped.c[plan.label(part.raw)]
        total = sa.cast(sa.func.coalesce(raw, sa.literal_column("0")), sa.Float())
        return _scaled_sql(total, part.scale)

    if isinstance(value, _Additive):
        return additive(value)
    denominator = sa.func.nullif(
        additive(value.denominator), sa.literal_column("0"), type_=sa.Float()
    )
    return _scaled_sql(additive(value.numerator) / denominator, value.scale)


def _sortable(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    # Byte order on both dialects: a PostgreSQL locale collation would ignore underscores.
    return sa.collate(column, "C") if dialect == "postgresql" else column


def _measure_conditions(plan: _Plan, grouped: sa.Subquery) -> list[sa.ColumnElement[bool]]:
    return [
        _compare(_value_sql(plan, value, grouped), condition, _number)
        for value, condition in plan.measure_filters
    ]


def rows_statement(plan: _Plan, dialect: str) -> sa.Select[Any]:
    """The statement of a query's rows: filtered, ordered, one row beyond the limit."""
    grouped = _grouped(
        plan,
        {
            source: _source_rows(plan, source, dialect, keyed=True, name=f"rows_{source}")
            for source in plan.sources
        },
    )
    ordering: list[sa.ColumnElement[Any]] = []
    for member, descending in plan.order:
        if member == TIME_MEMBER:
            expression = _sortable(grouped.c.bucket, dialect)
        elif member in plan.values:
            expression = _value_sql(plan, plan.values[member], grouped)
        else:
            position = [dimension.name for dimension in plan.dimensions].index(member)
            expression = _sortable(grouped.c[f"dimension_{position}"], dialect)
        ordering.append((expression.desc() if descending else expression.asc()).nulls_last())
    # Then by every key, so that ties come out in the same order on every dialect.
    ordering.extend(_sortable(grouped.c[key], dialect).asc().nulls_last() for key in plan.keys)
    columns = [grouped.c[key] for key in plan.keys]
    columns.extend(grouped.c[f"value_{index}"] for index in range(len(plan.raws)))
    return (
        sa.select(*columns)
        .where(*_measure_conditions(plan, grouped))
        .order_by(*ordering)
        .limit(plan.limit + 1)
    )


def _encoded(key: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    # 'v' + value, or 'n' for null: never null, so that IN also matches the null keys.
    marked = sa.literal("v", sa.String()) + key
    return sa.func.coalesce(marked, sa.literal("n", sa.String()), type_=sa.String())


def totals_statement(plan: _Plan, dialect: str) -> sa.Select[Any]:
    """The statement of a query's totals: each source aggregated over all kept rows."""
    keyed = bool(plan.measure_filters)
    rows_of: dict[str, sa.FromClause] = {}
    for source in plan.sources:
        rows = _source_rows(plan, source, dialect, keyed=keyed, name=f"rows_{source}")
        # Measure filters need each row's keys twice, to find the groups kept and to keep
        # their rows: materialized, the keys are computed once and the planner cannot
        # repeat them per row of a join.
        rows_of[source] = (
            rows.element.cte(f"rows_{source}").prefix_with("MATERIALIZED") if keyed else rows
        )
    kept: sa.CTE | None = None
    if keyed:
        grouped = _grouped(plan, rows_of)
        keys = [_encoded(grouped.c[key]).label(key) for key in plan.keys]
        columns = keys or [sa.literal_column("1").label("kept")]
        kept = sa.select(*columns).where(*_measure_conditions(plan, grouped)).cte("kept")
    parts: dict[int, sa.ColumnElement[Any]] = {}
    joined: sa.FromClause | None = None
    for source in plan.sources:
        scope = rows_of[source]
        indexes = [index for index, raw in enumerate(plan.raws) if raw.source == source]
        statement = sa.select(
            *(
                _aggregate(plan.raws[index], scope.c[f"input_{index}"]).label(f"value_{index}")
                for index in indexes
            )
        ).select_from(scope)
        if kept is not None and plan.keys:
            # The rows of the groups kept; IN lets both engines hash the groups once.
            row_keys = sa.tuple_(*(_encoded(scope.c[key]) for key in plan.keys))
            statement = statement.where(row_keys.in_(sa.select(*kept.c)))
        elif kept is not None:
            statement = statement.where(sa.exists(sa.select(kept.c.kept)))
        part = statement.subquery(f"totals_{source}")
        parts.update({index: part.c[f"value_{index}"] for index in indexes})
        # Each part is one row: joining them on true puts every source's totals in one row.
        joined = part if joined is None else joined.join(part, sa.true())
    assert joined is not None
    return sa.select(*(parts[index] for index in range(len(plan.raws)))).select_from(joined)


# --- Shaping the result ------------------------------------------------------------------


def _scaled(number: float, scale: Fraction) -> float:
    if scale.numerator != 1:
        number = number * scale.numerator
    if scale.denominator != 1:
        number = number / scale.denominator
    return number


def _evaluate(plan: _Plan, value: _Value, raws: Sequence[Any]) -> float | None:
    def additive(part: _Additive) -> float:
        raw = raws[plan.raws.index(part.raw)]
        return _scaled(float(raw) if raw is not None else 0.0, part.scale)

    if isinstance(value, _Additive):
        return additive(value)
    denominator = additive(value.denominator)
    if denominator == 0:
        return None
    return _scaled(additive(value.numerator) / denominator, value.scale)


def _bucket_start(plan: _Plan, key: str | None) -> datetime | None:
    if key is None or plan.granularity is None:
        return None
    return plan.clock.bucket_start(key, plan.granularity)


def _measure_values(plan: _Plan, raws: Sequence[Any]) -> tuple[MeasureValue, ...]:
    return tuple(
        MeasureValue(measure.name, measure.unit, _evaluate(plan, plan.values[measure.name], raws))
        for measure in plan.measures
    )


def shape_result(plan: _Plan, rows: Sequence[AnyRow], totals: AnyRow) -> AnalyticsResult:
    """The result records from the raw aggregates of the rows and totals statements."""
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
    )


# --- The service -------------------------------------------------------------------------


class AnalyticsService(Protocol):
    """Measures by dimensions and time over the catalog in force."""

    @property
    def catalog(self) -> AnalyticsCatalog: ...

    async def query(self, query: AnalyticsQuery) -> AnalyticsResult: ...


class SqlAnalyticsService:
    """AnalyticsService over the SQL store: two statements per query, rows and totals."""

    def __init__(self, engine: StoreEngine, catalog: AnalyticsCatalog) -> None:
        self._engine = engine
        self._catalog = catalog

    @property
    def catalog(self) -> AnalyticsCatalog:
        """The catalog queries are checked against."""
        return self._catalog

    async def query(self, query: AnalyticsQuery) -> AnalyticsResult:
        """Runs a query; BAD_USER_INPUT when it does not fit the catalog."""
        plan = plan_query(self._catalog, query)
        dialect = self._engine.dialect.name

        async def rows_and_totals(connection: AsyncConnection) -> AnalyticsResult:
            rows = (await connection.execute(rows_statement(plan, dialect))).all()
            totals = (await connection.execute(totals_statement(plan, dialect))).one()
            return shape_result(plan, rows, totals)

        return await read(self._engine, rows_and_totals)
