"""The analytics catalog: sources, dimensions and measures declared in YAML, checked.

The built-in catalog is ``analytics_catalog.yaml`` beside this package; an operator's file
adds entries and replaces built-in ones by name. Every table.column named is checked against
the demo business's tables, so a catalog can never reach users, keys or the audit log.

One idea, a little past the usual size: the definitions and the checks that build them
from YAML change together (a new kind of measure is a field, its spec and its check).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from dataintel.services.yaml_files import declaration_files, parse_yaml
from dataintel.store import tables
from dataintel.store.types import UTCDateTime

Aggregation = Literal["sum", "count", "count_distinct", "avg", "ratio"]
DimensionType = Literal["string", "time"]
RollupGrain = Literal["hour", "day", "month"]
RollupPartition = Literal["day", "month"]
RollupRefresh = Literal["changed_partitions", "all_partitions"]

BUILT_IN_CATALOG = "analytics_catalog.yaml"
TIME_MEMBER = "time"
"""The name by which order_by refers to the time bucket; no measure or dimension may take it."""

_NAME = r"^[a-z][a-z0-9_]*$"
_ADDITIVE: tuple[Aggregation, ...] = ("sum", "count", "count_distinct")
# Only the demo business's tables: the catalog must never reach users, keys or the audit log.
TABLES: Mapping[str, sa.Table] = {table.name: table for table in tables.DEMO_TABLES}
"""The tables a catalog may name, by name."""


class AnalyticsCatalogError(ValueError):
    """A catalog file that cannot be loaded; raised when the app or CLI starts."""


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


@dataclass(frozen=True, slots=True)
class RollupDefinition:
    """Pre-aggregated sums and counts of a source by UTC hour (or day, or month) and dimensions.

    Built into a table of the store, one partition at a time: a UTC day (the default) or a
    UTC month, or for a grain of another zone a month of that zone; queries it covers are
    answered from it while it is current (see ``routing``). A day or month grain holds the
    days (months) of ``zone``, each inside one partition: it answers only queries in that
    zone bucketed by the grain or coarser over whole buckets. An hour grain is UTC's (whole
    hours serve most zones).
    """

    name: str
    description: str
    source: str
    measures: tuple[str, ...]
    dimensions: tuple[str, ...]
    grain: RollupGrain
    partition: RollupPartition
    refresh: RollupRefresh
    zone: str = "UTC"


class AnalyticsCatalog:
    """The sources, dimensions, measures and rollups in force, checked for consistency."""

    def __init__(
        self,
        sources: Iterable[SourceDefinition],
        dimensions: Iterable[DimensionDefinition],
        measures: Iterable[MeasureDefinition],
        rollups: Iterable[RollupDefinition] = (),
    ) -> None:
        self.sources: Mapping[str, SourceDefinition] = {source.name: source for source in sources}
        self.dimensions: Mapping[str, DimensionDefinition] = {
            dimension.name: dimension for dimension in dimensions
        }
        self.measures: Mapping[str, MeasureDefinition] = {
            measure.name: measure for measure in measures
        }
        self.rollups: Mapping[str, RollupDefinition] = {rollup.name: rollup for rollup in rollups}

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
        return common_names(self.reachable(source) for source in self.sources_of(measure))


def common_names(groups: Iterable[Sequence[str]]) -> tuple[str, ...]:
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


class _RollupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME, max_length=40)
    description: str = Field(min_length=1)
    source: str
    measures: list[str] = Field(min_length=1)
    dimensions: list[str] = Field(default_factory=list)
    grain: RollupGrain = "hour"
    # Whose days (months) a day (month) grain holds.
    zone: str = "UTC"
    # UTC days by default: a day of new rows rebuilds that day. Months (of the zone): fewer,
    # larger partitions; the only ones of a month grain or of a zone other than UTC.
    partition: RollupPartition | None = None
    refresh: RollupRefresh = "changed_partitions"


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[_SourceSpec] = Field(default_factory=list)
    dimensions: list[_DimensionSpec] = Field(default_factory=list)
    measures: list[_MeasureSpec] = Field(default_factory=list)
    rollups: list[_RollupSpec] = Field(default_factory=list)


def _text(description: str) -> str:
    return " ".join(description.split())


def _table_column(reference: str, where: str) -> sa.Column[Any]:
    table_name, _, column_name = reference.partition(".")
    table = TABLES.get(table_name)
    if table is None:
        raise AnalyticsCatalogError(
            f"{where}: '{reference}' is not table.column of a known table;"
            f" tables: {', '.join(sorted(TABLES))}."
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
    if spec.table not in TABLES:
        raise AnalyticsCatalogError(
            f"{where}: table '{spec.table}' is not one of {', '.join(sorted(TABLES))}."
        )
    reached = [spec.table]
    joins: list[JoinDefinition] = []
    for join in spec.joins:
        if join.table not in TABLES or join.table in reached:
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


def _rollable(measure: MeasureDefinition, measures: Mapping[str, MeasureDefinition]) -> str | None:
    """Why a measure cannot be rolled up exactly; None when it can."""
    if measure.aggregation == "ratio":
        for part in (measure.numerator, measure.denominator):
            reason = _rollable(measures[part or ""], measures)
            if reason is not None:
                return f"its part '{part}' cannot: {reason}"
        return None
    if measure.aggregation in ("sum", "avg"):
        column = _table_column(measure.column or "", measure.name)
        if not isinstance(column.type, sa.Integer):
            return "only sums of integer columns are exact in every store"
    return None


def _rollup(
    spec: _RollupSpec,
    origin: str,
    sources: Mapping[str, SourceDefinition],
    dimensions: Mapping[str, DimensionDefinition],
    measures: Mapping[str, MeasureDefinition],
) -> RollupDefinition:
    where = f"{origin}: rollup '{spec.name}'"
    source = sources.get(spec.source)
    if source is None:
        raise AnalyticsCatalogError(
            f"{where}: source '{spec.source}' is not one of {', '.join(sorted(sources))}."
        )
    for name in spec.measures:
        measure = measures.get(name)
        if measure is None:
            raise AnalyticsCatalogError(
                f"{where}: measure '{name}' is not one of {', '.join(sorted(measures))}."
            )
        measure_sources = _sources_of(measure, measures)
        if measure_sources != (source.name,):
            raise AnalyticsCatalogError(
                f"{where}: measure '{name}' aggregates {', '.join(measure_sources)}, not"
                f" only the rollup's source '{source.name}'."
            )
        reason = _rollable(measure, measures)
        if reason is not None:
            raise AnalyticsCatalogError(f"{where}: measure '{name}' cannot be rolled up: {reason}.")
    _check_zone(spec, where)
    for name in spec.dimensions:
        dimension = dimensions.get(name)
        if dimension is None or dimension.type != "string":
            strings = sorted(key for key, found in dimensions.items() if found.type == "string")
            raise AnalyticsCatalogError(
                f"{where}: '{name}' is not a string dimension; they are: {', '.join(strings)}."
            )
        if dimension.table not in source.tables:
            raise AnalyticsCatalogError(
                f"{where}: dimension '{name}' is not reachable from source '{source.name}'"
                f" (it reaches {', '.join(source.tables)})."
            )
    return RollupDefinition(
        spec.name,
        _text(spec.description),
        source.name,
        tuple(dict.fromkeys(spec.measures)),
        tuple(dict.fromkeys(spec.dimensions)),
        spec.grain,
        _partition(spec, where),
        spec.refresh,
        spec.zone,
    )


def _check_zone(spec: _RollupSpec, where: str) -> None:
    try:
        known = bool(spec.zone) and ZoneInfo(spec.zone).key == spec.zone
    except (ZoneInfoNotFoundError, ValueError, OSError):
        known = False
    if not known:
        raise AnalyticsCatalogError(
            f"{where}: zone '{spec.zone}' is not an IANA time zone name (e.g. Europe/Berlin)."
        )
    if spec.grain == "hour" and spec.zone != "UTC":
        # An hour is the same in every zone with whole-hour offsets: routing decides which.
        raise AnalyticsCatalogError(
            f"{where}: an hour grain is UTC's hours (zone: UTC); zone '{spec.zone}' needs a"
            " day or month grain."
        )


def _partition(spec: _RollupSpec, where: str) -> RollupPartition:
    """The rollup's partitions: UTC days unless its grain or zone asks for months."""
    # A month grain's cell is a month; another zone's day straddles two UTC days of write
    # counters, and its day keys could not be computed from stored grains alike on both
    # dialects: months of the zone hold whole cells and keep a late day to one partition.
    monthly = spec.grain == "month" or spec.zone != "UTC"
    if spec.partition is None:
        return "month" if monthly else "day"
    if spec.partition == "day" and monthly:
        held = "a month grain" if spec.grain == "month" else f"a grain of zone '{spec.zone}'"
        raise AnalyticsCatalogError(
            f"{where}: {held} is partitioned by months (partition: month), not days."
        )
    return spec.partition


def _sources_of(
    measure: MeasureDefinition, measures: Mapping[str, MeasureDefinition]
) -> tuple[str, ...]:
    if measure.source is not None:
        return (measure.source,)
    parts = (measures[part or ""] for part in (measure.numerator, measure.denominator))
    return tuple(dict.fromkeys(name for part in parts for name in _sources_of(part, measures)))


def _primary_key(table: str) -> str:
    return str(next(iter(TABLES[table].primary_key.columns)).name)


def _read_file(text: str, origin: str) -> _FileSpec:
    return parse_yaml(text, origin, _FileSpec, AnalyticsCatalogError, "an analytics catalog")


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
    rollups: dict[str, tuple[_RollupSpec, str]] = {}
    for text, origin in files:
        spec = _read_file(text, origin)
        sources.update(_by_name(spec.sources, origin, "source"))
        dimensions.update(_by_name(spec.dimensions, origin, "dimension"))
        measures.update(_by_name(spec.measures, origin, "measure"))
        rollups.update(_by_name(spec.rollups, origin, "rollup"))
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
    by_name = {measure.name: measure for measure in checked_measures}
    checked_rollups = [
        _rollup(spec, origin, checked_sources, checked_dimensions, by_name)
        for spec, origin in rollups.values()
    ]
    return AnalyticsCatalog(
        checked_sources.values(), checked_dimensions.values(), checked_measures, checked_rollups
    )


def load_catalog(path: Path | None = None) -> AnalyticsCatalog:
    """The built-in catalog, with the entries of ``path`` added or replacing them by name."""
    return build_catalog(
        declaration_files(
            "dataintel.services",
            BUILT_IN_CATALOG,
            path,
            AnalyticsCatalogError,
            "the analytics catalog",
        )
    )
