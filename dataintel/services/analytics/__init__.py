"""Analytics (after Cube's semantic layer): measures over dimensions and time buckets.

The catalog is declarative YAML (sources, dimensions, measures) that an operator extends
without code. A query names measures, dimensions, a time granularity in a time zone, a date
range, filters, an order and a limit; it compiles to one statement for the rows (every
source's aggregate merged on the dimension values) and one for the totals.

Time buckets are computed from UTC with the zone's offsets, which Python's zoneinfo gives
and the statement carries as literals, so SQLite and PostgreSQL bucket identically and
neither needs its own time zone data.

One idea per module: ``catalog`` (the YAML, checked), ``planner`` (a query checked against
it), ``sql`` (the two statements), ``results`` (the records clients get), ``rollups``
(pre-aggregated tables and their incremental build), ``routing`` (which sources a current
rollup answers) and ``service``.
"""

from dataintel.services.analytics.catalog import (
    BUILT_IN_CATALOG,
    TIME_MEMBER,
    Aggregation,
    AnalyticsCatalog,
    AnalyticsCatalogError,
    DimensionDefinition,
    DimensionType,
    JoinDefinition,
    MeasureDefinition,
    RollupDefinition,
    SourceDefinition,
    build_catalog,
    load_catalog,
)
from dataintel.services.analytics.planner import (
    CLOCK_YEARS,
    DEFAULT_LIMIT,
    FILTER_OPERATORS,
    MAXIMUM_FILTER_VALUES,
    MAXIMUM_LIMIT,
    OPEN_RANGE_YEARS,
    STRING_OPERATORS,
    AnalyticsFilter,
    AnalyticsOrder,
    AnalyticsQuery,
    FilterValue,
    plan_query,
)
from dataintel.services.analytics.results import (
    AnalyticsResult,
    AnalyticsRow,
    DimensionValue,
    MeasureValue,
    ResultSource,
    shape_result,
)
from dataintel.services.analytics.rollups import RefreshSummary, refresh_rollup, refresh_rollups
from dataintel.services.analytics.service import AnalyticsService, SqlAnalyticsService
from dataintel.services.analytics.sql import rows_statement, totals_statement

__all__ = [
    "BUILT_IN_CATALOG",
    "CLOCK_YEARS",
    "DEFAULT_LIMIT",
    "FILTER_OPERATORS",
    "MAXIMUM_FILTER_VALUES",
    "MAXIMUM_LIMIT",
    "OPEN_RANGE_YEARS",
    "STRING_OPERATORS",
    "TIME_MEMBER",
    "Aggregation",
    "AnalyticsCatalog",
    "AnalyticsCatalogError",
    "AnalyticsFilter",
    "AnalyticsOrder",
    "AnalyticsQuery",
    "AnalyticsResult",
    "AnalyticsRow",
    "AnalyticsService",
    "DimensionDefinition",
    "DimensionType",
    "DimensionValue",
    "FilterValue",
    "JoinDefinition",
    "MeasureDefinition",
    "MeasureValue",
    "RefreshSummary",
    "ResultSource",
    "RollupDefinition",
    "SourceDefinition",
    "SqlAnalyticsService",
    "build_catalog",
    "load_catalog",
    "plan_query",
    "refresh_rollup",
    "refresh_rollups",
    "rows_statement",
    "shape_result",
    "totals_statement",
]
