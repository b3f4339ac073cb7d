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

import functools
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from difflib import get_close_matches
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, Unpack
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError
from dataintel.store import tables
from dataintel.store.types import UTCDateTime

Aggregation = Literal["sum", "count", "count_distinct", "avg", "ratio"]
DimensionType = Literal["string", "time"]
FilterValue = str | float | datetime
AnyRow = sa.Row[Unpack[tuple[Any, ...]]]

BUILT_IN_CATALOG = "analytics_catalog.yaml"
DEFAULT_LIMIT = 1000
MAXIMUM_LIMIT = 10_000
TIME_MEMBER = "time"
"""The name by which order_by refers to the time bucket; no measure or dimension may take it."""

AGGREGATIONS: tuple[Aggregation, ...] = ("sum", "count", "count_distinct", "avg", "ratio")
GRANULARITIES = ("hour", "day", "week", "month", "quarter", "year")
FILTER_OPERATORS = ("equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "between")
STRING_OPERATORS = ("equals", "not_equals", "in", "not_in")

# Without a date range, bucketing covers the offsets of these years; outside them the
# nearest year's offset holds. Narrower ranges make smaller statements.
OPEN_RANGE_YEARS = (1970, 2100)

_DOMAIN = "analytics"
_NAME = r"^[a-z][a-z0-9_]*$"
_DAY_SECONDS = 86_400
_KEY_FORMAT = "%Y-%m-%d %H:%M:%S"
_SINGLE_VALUE_OPERATORS = ("equals", "not_equals", "gt", "gte", "lt", "lte")
_ADDITIVE: tuple[Aggregation, ...] = ("sum", "count", "count_distinct")
# Only the demo business's tables: the catalog must never reach users, keys or the audit log.
_TABLES: Mapping[str, sa.Table] = {table.name: table for table in tables.DEMO_TABLES}


class AnalyticsCatalogError(ValueError):
    """A catalog file that cannot be loaded; raised when the app or CLI starts."""


# --- The catalog -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinDefinition:
    """A many-to-one join from a table already in a source to one more table."""

    table: str
    left: str
    right: str
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
    on: tuple[str, str]
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
        left, right = join.on
        _table_column(left, where)
        _table_column(right, where)
        if left.partition(".")[0] not in reached or right.partition(".")[0] != join.table:
            raise AnalyticsCatalogError(
                f"{where}: join on [{left}, {right}] must go from a table already in the"
                f" source ({', '.join(reached)}) to '{join.table}'."
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
                additive = sorted(name for name, other in specs.items() if other.aggregation in _ADDITIVE)
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
        raise AnalyticsCatalogError(f"{origin} is not an analytics catalog: {error}") from None


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
    clashes = sorted(set(dimensions) & set(measures))
    if clashes:
        raise AnalyticsCatalogError(
            f"{', '.join(clashes)}: a name is either a measure or a dimension, not both."
        )
    if TIME_MEMBER in dimensions or TIME_MEMBER in measures:
        raise AnalyticsCatalogError(f"'{TIME_MEMBER}' is reserved for the time bucket.")
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
    return AnalyticsCatalog(
        checked_sources.values(), checked_dimensions.values(), checked_measures
    )


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


# --- Time zones: offsets from zoneinfo, the same numbers for every dialect ----------------


def _offset_at(zone: ZoneInfo, epoch_seconds: int) -> int:
    offset = datetime.fromtimestamp(epoch_seconds, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


@functools.lru_cache(maxsize=4096)
def _transitions_in_year(zone_key: str, year: int) -> tuple[tuple[int, int], ...]:
    """(epoch second, offset from then on) of each offset change in the UTC year."""
    zone = ZoneInfo(zone_key)
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    found: list[tuple[int, int]] = []
    previous, previous_offset = start, _offset_at(zone, start)
    # Daily samples, then bisection to the second: zones change offset at most a few times
    # a year, and never twice within a day.
    for sample in [*range(start + _DAY_SECONDS, end, _DAY_SECONDS), end]:
        offset = _offset_at(zone, sample)
        if offset != previous_offset:
            low, high = previous, sample
            while high - low > 1:
                middle = (low + high) // 2
                if _offset_at(zone, middle) == previous_offset:
                    low = middle
                else:
                    high = middle
            found.append((high, _offset_at(zone, high)))
        previous, previous_offset = sample, offset
    return tuple(found)


@dataclass(frozen=True, slots=True)
class _Period:
    start: datetime | None
    offset: int


class ZoneClock:
    """A zone's UTC offsets over a span of years, as periods of constant offset."""

    def __init__(self, zone: ZoneInfo, first_year: int, last_year: int) -> None:
        self.zone = zone
        begin = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
        periods = [_Period(None, _offset_at(zone, begin))]
        for year in range(first_year, last_year + 1):
            for moment, offset in _transitions_in_year(str(zone.key), year):
                periods.append(_Period(datetime.fromtimestamp(moment, UTC), offset))
        self.periods = tuple(periods)
        # The wall-clock time at which each period ends: increasing, so bisect finds periods.
        self._local_ends = [
            (following.start + timedelta(seconds=period.offset)).replace(tzinfo=None)
            for period, following in zip(periods, periods[1:], strict=False)
            if following.start is not None
        ]

    def first_instant(self, local: datetime) -> datetime:
        """The first moment whose wall-clock time is ``local`` or later, in the zone.

        Unlike ``local.replace(tzinfo=zone)`` this is right in a gap (a bucket that starts
        at a skipped midnight starts when the clocks jump) and takes the earlier of two
        repeated times.
        """
        index = bisect_right(self._local_ends, local)
        period = self.periods[index]
        candidate = local.replace(tzinfo=UTC) - timedelta(seconds=period.offset)
        if period.start is not None and period.start > candidate:
            candidate = period.start
        return candidate.astimezone(self.zone)

    def resolve(self, moment: datetime) -> datetime:
        """An aware moment as is; a naive one as a wall-clock time in the zone."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            return self.first_instant(moment)
        return moment.astimezone(self.zone)


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone of this name; BAD_USER_INPUT naming close valid names if unknown."""
    try:
        if name and not name.startswith(("/", ".")) and ".." not in name:
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    known = _zone_names()
    close = get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "e.g. UTC, Europe/Berlin."
    raise BadUserInputError(
        f"Unknown time zone '{name}'; give an IANA time zone name ({hint})",
        domain=_DOMAIN,
        details={"argument": "timezone", "valid": close or ["UTC", "Europe/Berlin"]},
    )


@functools.cache
def _zone_names() -> tuple[str, ...]:
    from zoneinfo import available_timezones

    return tuple(sorted(available_timezones()))


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
        assert isinstance(numerator, _Additive) and isinstance(denominator, _Additive)
        return _Quotient(numerator, denominator, measure.scale)
    where = tuple(
        (catalog.dimensions[name].column, values) for name, values in measure.where
    )
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
    moments = [query.start, query.end] + [
        value
        for condition in query.filters
        for value in condition.values
        if isinstance(value, datetime)
    ]
    years = [moment.year for moment in moments if moment is not None]
    first = min(years) - 1 if query.start is not None else OPEN_RANGE_YEARS[0]
    last = max(years) + 1 if query.end is not None else OPEN_RANGE_YEARS[1]
    if years:
        first, last = min(first, min(years) - 1), max(last, max(years) + 1)
    return ZoneClock(zone, max(first, 1), min(last, 9998))


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
    if operator in ("in", "not_in") and count == 0:
        raise _bad(f"Filter on '{member}': {operator} takes at least one value.")
    expected: type | tuple[type, ...] = {"string": str, "time": datetime}.get(kind, (int, float))
    wanted = {"string": "strings", "time": "datetimes"}.get(kind, "numbers")
    if any(isinstance(value, bool) or not isinstance(value, expected) for value in values):
        raise _bad(f"Filter on '{member}' takes {wanted} (a {kind} member).", member=member)
    if kind == "time":
        resolved = tuple(clock.resolve(value) for value in values if isinstance(value, datetime))
        return _Condition(operator, resolved)
    if kind == "measure":
        return _Condition(operator, tuple(float(value) for value in values if not isinstance(value, datetime | str)))
    return _Condition(operator, values)


def plan_query(catalog: AnalyticsCatalog, query: AnalyticsQuery) -> _Plan:
    """The query checked against the catalog; BAD_USER_INPUT names what is wrong and why."""
    requested = tuple(dict.fromkeys(query.measures))
    if not requested:
        raise _bad(
            f"Give at least one measure; valid measures: {_choices(catalog.measures)}.",
            argument="measures",
            valid=list(catalog.measures),
        )
    _unknown("measure", "measures", [n for n in requested if n not in catalog.measures], list(catalog.measures))
    grouped = tuple(dict.fromkeys(query.dimensions))
    strings = [name for name, found in catalog.dimensions.items() if found.type == "string"]
    times = [name for name, found in catalog.dimensions.items() if found.type == "time"]
    _unknown("dimension", "dimensions", [n for n in grouped if n not in strings], strings)
    if query.granularity is not None and query.granularity not in GRANULARITIES:
        raise _bad(
            f"Unknown granularity '{query.granularity}'; valid granularities:"
            f" {_choices(GRANULARITIES)}.",
            argument="granularity",
            valid=list(GRANULARITIES),
        )
    if query.time_dimension is not None:
        _unknown("time dimension", "timeDimension", [query.time_dimension] if query.time_dimension not in times else [], times)
    if not 1 <= query.limit <= MAXIMUM_LIMIT:
        raise _bad(
            f"'limit' must be between 1 and {MAXIMUM_LIMIT}; it was {query.limit}.",
            argument="limit",
            maximum=MAXIMUM_LIMIT,
        )
    zone = zone_named(query.timezone)
    clock = _clock(zone, query)
    start = clock.resolve(query.start) if query.start is not None else None
    end = clock.resolve(query.end) if query.end is not None else None
    if start is not None and end is not None and start >= end:
        raise _bad("The date range is empty: 'from' must come before 'to'.", argument="to")

    members = [*catalog.measures, *catalog.dimensions]
    needed = list(requested)
    dimension_filters: list[tuple[DimensionDefinition, _Condition]] = []
    measure_filters: list[tuple[str, _Condition]] = []
    for condition in query.filters:
        _unknown("member", "filters", [condition.member] if condition.member not in members else [], members)
        if condition.member in catalog.measures:
            measure_filters.append(
                (condition.member, _condition(condition.member, condition.operator, condition.values, "measure", clock))
            )
            needed.append(condition.member)
        else:
            dimension = catalog.dimensions[condition.member]
            dimension_filters.append(
                (dimension, _condition(condition.member, condition.operator, condition.values, dimension.type, clock))
            )
    order: list[tuple[str, bool]] = []
    sortable = [*([TIME_MEMBER] if query.granularity else []), *catalog.measures, *grouped]
    for item in query.order_by:
        if item.member not in sortable:
            raise _bad(
                f"Cannot order by '{item.member}'; order by a measure, a grouped dimension"
                f" or '{TIME_MEMBER}' with a granularity: {_choices(sortable)}.",
                argument="orderBy",
                valid=sortable,
            )
        if item.member in catalog.measures:
            needed.append(item.member)
        order.append((item.member, item.descending))

    needed_measures = [catalog.measures[name] for name in dict.fromkeys(needed)]
    sources = tuple(dict.fromkeys(s for m in needed_measures for s in catalog.sources_of(m)))
    reached = {name: catalog.reachable(name) for name in sources}
    common = _common(reached.values())
    required = [
        *grouped,
        *(dimension.name for dimension, _ in dimension_filters),
        *([query.time_dimension] if query.time_dimension else []),
    ]
    for name in dict.fromkeys(required):
        missing = [source for source in sources if name not in reached[source]]
        if missing:
            users = [m.name for m in needed_measures if set(catalog.sources_of(m)) & set(missing)]
            raise _bad(
                f"Dimension '{name}' is not reachable from source {_choices(missing)} of"
                f" measure {_choices(users)}; dimensions reachable from every measure's"
                f" source: {_choices(common)}.",
                argument="dimensions",
                dimension=name,
                sources=missing,
                valid=list(common),
            )

    values = {measure.name: _value_of(catalog, measure) for measure in needed_measures}
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
