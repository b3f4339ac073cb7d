"""What a rollup groups its source's rows by: its raws, the joined rows, cells and partitions.

Shared by the rollup partitions (``rollups``) and the key sets of their distinct counts
(``key_sets``), which must put a row in the same cell and partition.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dataintel.services.analytics.catalog import (
    TABLES,
    AnalyticsCatalog,
    RollupDefinition,
    SourceDefinition,
)
from dataintel.services.analytics.planner import OPEN_RANGE_YEARS, Raw, raws_of, value_of
from dataintel.services.time_buckets import ZoneClock, bucket_key
from dataintel.store.types import UTCDateTime

TABLE_PREFIX = "analytics_rollup_"

# Per partition unit: the key's Python format and PostgreSQL's. Keys sort by time, a month's
# just before its first day's.
KEY_FORMATS = {"day": ("%Y-%m-%d", "YYYY-MM-DD"), "month": ("%Y-%m", "YYYY-MM")}


def rollup_raws(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> tuple[Raw, ...]:
    """The raw aggregates a rollup stores, one column each, in column order."""
    values = (value_of(catalog, catalog.measures[name]) for name in rollup.measures)
    return tuple(dict.fromkeys(raw for value in values for raw in raws_of(value)))


def distinct_raws(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> tuple[int, ...]:
    """The positions, among the rollup's raws, of its distinct counts."""
    raws = rollup_raws(catalog, rollup)
    return tuple(index for index, raw in enumerate(raws) if raw.function == "count_distinct")


def column(reference: str) -> sa.Column[Any]:
    """The column of a table.column reference."""
    table, _, name = reference.partition(".")
    return TABLES[table].c[name]


@functools.lru_cache(maxsize=64)
def zone_clock(zone: str) -> ZoneClock:
    """The offsets of a rollup's zone over every year a store may hold."""
    return ZoneClock(ZoneInfo(zone), *OPEN_RANGE_YEARS)


def partition_of(moment: datetime, unit: str, zone: str = "UTC") -> str:
    """The key of the partition (of a rollup partitioned by ``unit`` of ``zone``) of a moment."""
    local = moment.astimezone(UTC if zone == "UTC" else ZoneInfo(zone))
    return local.strftime(KEY_FORMATS[unit][0])


def grain_start(moment: sa.ColumnElement[Any], grain: str, dialect: str) -> sa.ColumnElement[Any]:
    # The stored form of the UTC hour's (day's) start on each dialect, so that it compares
    # like the source's own time values.
    if dialect == "postgresql":
        utc: sa.ColumnElement[str] = sa.literal_column("'UTC'")
        truncated = sa.func.date_trunc(
            sa.literal_column(f"'{grain}'"), sa.func.timezone(utc, moment)
        )
        return sa.func.timezone(utc, truncated, type_=UTCDateTime)
    shape = "%Y-%m-%d %H:00:00.000000" if grain == "hour" else "%Y-%m-%d 00:00:00.000000"
    return sa.func.strftime(shape, moment, type_=UTCDateTime)


def cell_of(
    moment: sa.ColumnElement[Any],
    rollup: RollupDefinition,
    dialect: str,
    span: tuple[datetime | None, datetime | None],
) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """What a rollup groups a moment by (its grain's bucket), and the moment it stores for it.

    An hour stores its start. A day or month of a zone stores its earliest moment in the
    cell: any moment of a day falls in that day's buckets at every coarser granularity of the
    zone, and this one needs no zone arithmetic back from wall-clock time to UTC.
    """
    if rollup.grain == "hour":
        start = grain_start(moment, "hour", dialect)
        return start, start
    periods = zone_clock(rollup.zone).periods_between(*span)
    key = bucket_key(moment, rollup.grain, periods, dialect)
    return key, sa.func.min(moment, type_=UTCDateTime)


def joined_source(source: SourceDefinition) -> sa.FromClause:
    """A source's table with its joins: what raw queries and rollup builds read."""
    joined: sa.FromClause = TABLES[source.table]
    for join in source.joins:
        condition = column(join.key) == column(join.references)
        joined = joined.join(TABLES[join.table], condition, isouter=join.optional)
    return joined
