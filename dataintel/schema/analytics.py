"""Analytics: measures by dimensions and time buckets over a catalog operators extend.

Measure and dimension names are strings checked against the catalog, so that a catalog
entry added in YAML needs no schema change; granularities and operators are enums.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from dataintel.directives.auth import ANALYSTS
from dataintel.directives.cache_control import CacheControl
from dataintel.errors import BadUserInputError
from dataintel.resolvers import analytics as resolvers
from dataintel.resolvers.info import Info
from dataintel.schema.pagination import INHERITED_CACHE
from dataintel.services import analytics as records


@strawberry.enum(description="The length of a time bucket, in the query's time zone.")
class AnalyticsGranularity(enum.Enum):
    HOUR = strawberry.enum_value("hour", description="Clock hours.")
    DAY = strawberry.enum_value("day", description="Days from midnight.")
    WEEK = strawberry.enum_value("week", description="ISO weeks, from Monday midnight.")
    MONTH = strawberry.enum_value("month", description="Calendar months.")
    QUARTER = strawberry.enum_value("quarter", description="January, April, July, October.")
    YEAR = strawberry.enum_value("year", description="Calendar years.")


@strawberry.enum(description="How a filter compares a measure or dimension with its values.")
class AnalyticsFilterOperator(enum.Enum):
    EQUALS = strawberry.enum_value("equals", description="Equal to the one value.")
    NOT_EQUALS = strawberry.enum_value(
        "not_equals", description="Not equal to the one value; null counts as not equal."
    )
    IN = strawberry.enum_value("in", description="Equal to any of the values.")
    NOT_IN = strawberry.enum_value(
        "not_in", description="Equal to none of the values; null counts as none."
    )
    GT = strawberry.enum_value("gt", description="Greater than the one value.")
    GTE = strawberry.enum_value("gte", description="Greater than or equal to the one value.")
    LT = strawberry.enum_value("lt", description="Less than the one value.")
    LTE = strawberry.enum_value("lte", description="Less than or equal to the one value.")
    BETWEEN = strawberry.enum_value(
        "between", description="Between the two values (low, high), both included."
    )


@strawberry.enum(description="Which way to sort.")
class AnalyticsSortDirection(enum.Enum):
    ASC = strawberry.enum_value("asc", description="Smallest (or earliest) first.")
    DESC = strawberry.enum_value("desc", description="Largest (or latest) first.")


@strawberry.enum(description="How a measure aggregates its source's rows.")
class AnalyticsAggregation(enum.Enum):
    SUM = strawberry.enum_value("sum", description="Sum of a column.")
    COUNT = strawberry.enum_value("count", description="Rows (whose column is not null).")
    COUNT_DISTINCT = strawberry.enum_value("count_distinct", description="Distinct values.")
    AVG = strawberry.enum_value("avg", description="Mean of a column over its non-null rows.")
    RATIO = strawberry.enum_value("ratio", description="One measure divided by another.")


@strawberry.enum(description="Where an analytics result's aggregates were read from.")
class AnalyticsResultSource(enum.Enum):
    ROLLUP = strawberry.enum_value(
        "rollup", description="Every source from a rollup that was current for the range."
    )
    RAW = strawberry.enum_value("raw", description="Every source from its raw rows.")
    MIXED = strawberry.enum_value(
        "mixed", description="Some sources from current rollups, the others from raw rows."
    )


@strawberry.enum(description="What a dimension holds.")
class AnalyticsDimensionType(enum.Enum):
    STRING = strawberry.enum_value("string", description="Text: group and filter by it.")
    TIME = strawberry.enum_value("time", description="A moment: bucket and filter by it.")


@strawberry.type(
    description="A measure of the catalog: what it aggregates, in which unit.",
    directives=INHERITED_CACHE,
)
class AnalyticsMeasure:
    name: str = strawberry.field(description="The name queries use.")
    description: str = strawberry.field(description="What the measure means.")
    unit: str = strawberry.field(description="Unit of its values, e.g. USD, count, ratio.")
    aggregation: AnalyticsAggregation = strawberry.field(description="How it aggregates.")
    sources: list[str] = strawberry.field(description="The sources whose rows it aggregates.")
    dimensions: list[str] = strawberry.field(
        description="Dimensions it can be grouped or filtered by (reachable from its sources)."
    )

    @classmethod
    def from_record(
        cls, record: records.MeasureDefinition, catalog: records.AnalyticsCatalog
    ) -> AnalyticsMeasure:
        return cls(
            name=record.name,
            description=record.description,
            unit=record.unit,
            aggregation=AnalyticsAggregation(record.aggregation),
            sources=list(catalog.sources_of(record)),
            dimensions=list(catalog.dimensions_of(record)),
        )


@strawberry.type(
    description="A dimension of the catalog: a column to group or filter by.",
    directives=INHERITED_CACHE,
)
class AnalyticsDimension:
    name: str = strawberry.field(description="The name queries use.")
    description: str = strawberry.field(description="What the dimension means.")
    type: AnalyticsDimensionType = strawberry.field(
        description="STRING dimensions group and filter; TIME dimensions bucket and filter."
    )

    @classmethod
    def from_record(cls, record: records.DimensionDefinition) -> AnalyticsDimension:
        return cls(
            name=record.name,
            description=record.description,
            type=AnalyticsDimensionType(record.type),
        )


@strawberry.type(
    description="Rows measures aggregate: a table with what it joins.",
    directives=INHERITED_CACHE,
)
class AnalyticsSource:
    name: str = strawberry.field(description="The source's name.")
    description: str = strawberry.field(description="What its rows are.")
    time_dimension: str = strawberry.field(
        description="The time dimension that buckets its rows unless a query names another."
    )
    dimensions: list[str] = strawberry.field(description="Dimensions reachable from it.")

    @classmethod
    def from_record(
        cls, record: records.SourceDefinition, catalog: records.AnalyticsCatalog
    ) -> AnalyticsSource:
        return cls(
            name=record.name,
            description=record.description,
            time_dimension=record.time_dimension,
            dimensions=list(catalog.reachable(record.name)),
        )


@strawberry.type(
    description="The measures, dimensions and sources analytics queries can use.",
    directives=[CacheControl(max_age=3600)],
)
class AnalyticsCatalog:
    measures: list[AnalyticsMeasure] = strawberry.field(description="Every measure.")
    dimensions: list[AnalyticsDimension] = strawberry.field(description="Every dimension.")
    sources: list[AnalyticsSource] = strawberry.field(description="Every source.")

    @classmethod
    def from_record(cls, catalog: records.AnalyticsCatalog) -> AnalyticsCatalog:
        return cls(
            measures=[
                AnalyticsMeasure.from_record(measure, catalog)
                for measure in catalog.measures.values()
            ],
            dimensions=[
                AnalyticsDimension.from_record(dimension)
                for dimension in catalog.dimensions.values()
            ],
            sources=[
                AnalyticsSource.from_record(source, catalog) for source in catalog.sources.values()
            ],
        )


@strawberry.type(description="One measure's value.", directives=INHERITED_CACHE)
class AnalyticsMeasureValue:
    name: str = strawberry.field(description="The measure's name.")
    unit: str = strawberry.field(description="The measure's unit.")
    value: float | None = strawberry.field(
        description="The value; null where undefined (a ratio or mean over nothing)."
    )

    @classmethod
    def from_record(cls, record: records.MeasureValue) -> AnalyticsMeasureValue:
        return cls(name=record.name, unit=record.unit, value=record.value)


@strawberry.type(description="One dimension's value in a row.", directives=INHERITED_CACHE)
class AnalyticsDimensionValue:
    name: str = strawberry.field(description="The dimension's name.")
    value: str | None = strawberry.field(
        description="The value; null where the row has none (e.g. anonymous visitors' region)."
    )

    @classmethod
    def from_record(cls, record: records.DimensionValue) -> AnalyticsDimensionValue:
        return cls(name=record.name, value=record.value)


@strawberry.type(
    description="One group of a query: its time bucket, dimension values, measures.",
    directives=INHERITED_CACHE,
)
class AnalyticsRow:
    time: datetime | None = strawberry.field(
        description="Start of the time bucket, with the offset of the query's time zone; null"
        " without a granularity."
    )
    dimensions: list[AnalyticsDimensionValue] = strawberry.field(
        description="The grouped dimensions' values, in the order asked."
    )
    measures: list[AnalyticsMeasureValue] = strawberry.field(
        description="The measures' values, in the order asked."
    )

    @strawberry.field(description="One measure's value by name; BAD_USER_INPUT if not asked for.")
    def measure(
        self, name: Annotated[str, strawberry.argument(description="A measure of the query.")]
    ) -> float | None:
        for found in self.measures:
            if found.name == name:
                return found.value
        asked = ", ".join(found.name for found in self.measures)
        raise BadUserInputError(
            f"'{name}' is not a measure of this query; its measures: {asked}.", domain="analytics"
        )

    @strawberry.field(
        description="One dimension's value by name; BAD_USER_INPUT if not grouped by."
    )
    def dimension(
        self, name: Annotated[str, strawberry.argument(description="A grouped dimension.")]
    ) -> str | None:
        for found in self.dimensions:
            if found.name == name:
                return found.value
        grouped = ", ".join(found.name for found in self.dimensions) or "none"
        raise BadUserInputError(
            f"'{name}' is not a dimension of this query; its dimensions: {grouped}.",
            domain="analytics",
        )

    @classmethod
    def from_record(cls, record: records.AnalyticsRow) -> AnalyticsRow:
        return cls(
            time=record.time,
            dimensions=[AnalyticsDimensionValue.from_record(value) for value in record.dimensions],
            measures=[AnalyticsMeasureValue.from_record(value) for value in record.measures],
        )


@strawberry.type(
    description="The rows of an analytics query and its totals.",
    directives=[CacheControl(max_age=300)],
)
class AnalyticsResult:
    measures: list[AnalyticsMeasure] = strawberry.field(
        description="The measures asked for, in order."
    )
    dimensions: list[AnalyticsDimension] = strawberry.field(
        description="The dimensions grouped by, in order."
    )
    granularity: AnalyticsGranularity | None = strawberry.field(
        description="The time buckets' length; null without one."
    )
    timezone: str = strawberry.field(description="The IANA time zone of the buckets.")
    from_: datetime | None = strawberry.field(
        name="from", description="Start of the date range (included), in the time zone."
    )
    to: datetime | None = strawberry.field(
        description="End of the date range (excluded), in the time zone."
    )
    rows: list[AnalyticsRow] = strawberry.field(
        description="One row per group (time bucket and dimension values) with data, in the"
        " order asked, then by time and dimensions; at most `limit`."
    )
    totals: list[AnalyticsMeasureValue] = strawberry.field(
        description="The measures over every row the filters keep (not a sum of the rows:"
        " ratios and distinct counts are computed over the whole range), limit aside."
    )
    truncated: bool = strawberry.field(description="True when `limit` cut off more rows.")
    source: AnalyticsResultSource = strawberry.field(
        description="Where the aggregates came from. A rollup answers only when it is current"
        " for the whole range, so the values are the same either way."
    )
    rollups: list[str] = strawberry.field(
        description="The rollups that answered, by name; empty when every source was raw."
    )
    rollup_built_at: datetime | None = strawberry.field(
        description="When the oldest rollup partition used was built (each was checked"
        " current against its source at query time); null without rollups."
    )

    @classmethod
    def from_record(
        cls, record: records.AnalyticsResult, catalog: records.AnalyticsCatalog
    ) -> AnalyticsResult:
        return cls(
            measures=[
                AnalyticsMeasure.from_record(measure, catalog) for measure in record.measures
            ],
            dimensions=[
                AnalyticsDimension.from_record(dimension) for dimension in record.dimensions
            ],
            granularity=AnalyticsGranularity(record.granularity) if record.granularity else None,
            timezone=record.timezone,
            from_=record.start,
            to=record.end,
            rows=[AnalyticsRow.from_record(row) for row in record.rows],
            totals=[AnalyticsMeasureValue.from_record(value) for value in record.totals],
            truncated=record.truncated,
            source=AnalyticsResultSource(record.source),
            rollups=list(record.rollups),
            rollup_built_at=record.rollup_built_at,
        )


@strawberry.input(description="A condition on a dimension (per row) or a measure (per group).")
class AnalyticsFilterInput:
    member: str = strawberry.field(
        description="A measure (keeps the groups whose value passes, like SQL HAVING) or a"
        " dimension (keeps the rows that pass) of analyticsCatalog."
    )
    operator: AnalyticsFilterOperator = strawberry.field(
        description="The comparison; string dimensions take EQUALS, NOT_EQUALS, IN, NOT_IN."
    )
    values: list[str] | None = strawberry.field(
        default=None, description="The values for a string dimension."
    )
    numbers: list[float] | None = strawberry.field(
        default=None, description="The values for a measure, in its unit (e.g. dollars)."
    )
    times: list[datetime] | None = strawberry.field(
        default=None,
        description="The values for a time dimension; without an offset they are wall-clock"
        " times in the query's time zone.",
    )

    def to_record(self) -> records.AnalyticsFilter:
        given = [found for found in (self.values, self.numbers, self.times) if found is not None]
        if len(given) != 1:
            raise BadUserInputError(
                f"Filter on '{self.member}': give exactly one of values (string dimensions),"
                " numbers (measures) or times (time dimensions).",
                domain="analytics",
                details={"argument": "filters"},
            )
        return records.AnalyticsFilter(self.member, str(self.operator.value), tuple(given[0]))


@strawberry.input(description="A sort key.")
class AnalyticsOrderInput:
    member: str = strawberry.field(
        description="A measure, a grouped dimension, or `time` for the time bucket."
    )
    direction: AnalyticsSortDirection = strawberry.field(
        default=AnalyticsSortDirection.ASC, description="ASC (default) or DESC; nulls last."
    )

    def to_record(self) -> records.AnalyticsOrder:
        return records.AnalyticsOrder(
            self.member, descending=self.direction is AnalyticsSortDirection.DESC
        )


@strawberry.input(description="How to bucket and limit a query in time.")
class AnalyticsTimeInput:
    granularity: AnalyticsGranularity | None = strawberry.field(
        default=None, description="The buckets' length; none for one bucket over the range."
    )
    dimension: str | None = strawberry.field(
        default=None,
        description="The time dimension to bucket and limit by (e.g. signed_up_at for"
        " cohorts); by default each measure's source uses its own (see analyticsCatalog).",
    )
    from_: datetime | None = strawberry.field(
        name="from",
        default=None,
        description="Start of the range, included; without an offset, a wall-clock time in"
        " the query's time zone.",
    )
    to: datetime | None = strawberry.field(
        default=None,
        description="End of the range, excluded; without an offset, a wall-clock time in the"
        " query's time zone.",
    )


@strawberry.input(description="An analytics query: measures by dimensions and time bucket.")
class AnalyticsQueryInput:
    measures: list[str] = strawberry.field(
        description="Names of the measures to compute (see analyticsCatalog); several sources"
        " may be mixed as long as the dimensions are reachable from each."
    )
    dimensions: list[str] = strawberry.field(
        default_factory=list, description="Names of the string dimensions to group by."
    )
    time: AnalyticsTimeInput | None = strawberry.field(
        default=None, description="Time buckets and the date range; none for all time."
    )
    timezone: str = strawberry.field(
        default="UTC",
        description="IANA time zone of the buckets and of datetimes given without an offset,"
        " e.g. Europe/Berlin; DST changes are followed.",
    )
    filters: list[AnalyticsFilterInput] = strawberry.field(
        default_factory=list, description="Conditions that all must hold."
    )
    order_by: list[AnalyticsOrderInput] = strawberry.field(
        default_factory=list, description="Sort keys, first first; then by time and dimensions."
    )
    limit: int = strawberry.field(
        default=records.DEFAULT_LIMIT,
        description=f"Most rows returned, at most {records.MAXIMUM_LIMIT}.",
    )

    def to_record(self) -> records.AnalyticsQuery:
        time = self.time or AnalyticsTimeInput()
        return records.AnalyticsQuery(
            measures=tuple(self.measures),
            dimensions=tuple(self.dimensions),
            granularity=str(time.granularity.value) if time.granularity else None,
            time_dimension=time.dimension,
            start=time.from_,
            end=time.to,
            timezone=self.timezone,
            filters=tuple(condition.to_record() for condition in self.filters),
            order_by=tuple(item.to_record() for item in self.order_by),
            limit=self.limit,
        )


QueryArgument = Annotated[
    AnalyticsQueryInput,
    strawberry.argument(description="Measures, dimensions, time, filters, order and limit."),
]


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        description="The measures, dimensions and sources that `analytics` queries can use.",
        directives=[ANALYSTS],
    )
    def analytics_catalog(self, info: Info) -> AnalyticsCatalog | None:
        return AnalyticsCatalog.from_record(resolvers.catalog(info))

    @strawberry.field(
        description="Measures by dimensions and time bucket, with totals; null with"
        " BAD_USER_INPUT when the query does not fit the catalog.",
        directives=[ANALYSTS],
    )
    async def analytics(self, info: Info, query: QueryArgument) -> AnalyticsResult | None:
        result = await resolvers.run(info, query.to_record())
        return AnalyticsResult.from_record(result, resolvers.catalog(info))
