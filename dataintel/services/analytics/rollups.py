"""Rollup tables: a source's sums and counts by UTC hour (or a zone's day or month), by month.

Rollups are derived data, so the build creates their tables itself (no migration): a table
per rollup (``analytics_rollup_<name>``). The state table (migration 0007) records, per
partition, the definition it was built from, its row count and the write counters of the
tables it reads at that moment. A rollup whose definition changed is dropped and rebuilt whole.

The store counts every row written (inserted, deleted, or updated: old and new) per table and
UTC month of the row's time in ``row_change_counts`` (triggers, migration 0007; ``*`` for
tables without a time, such as customers). The counters only grow, so a partition is current
while the counters it was built at are the counters now: its own month's (and ``*``'s) of the
tables filed by the rollup's time, plus every counter of the other tables it joins. Late rows
count in their month, deletes in theirs, a re-timed row in both, a customer moved to another
region in every partition of the rollups that join customers. Checking that costs a read of a
few dozen counter rows, whatever the size of the source.

A partition is swapped in one transaction (delete, insert, record), reading the counters in
the same snapshot as the rows, so a reader sees either the old partition or the new one.

A day or month grain is a zone's (its partitions are that zone's months, whose UTC bounds
overlap two UTC months of counters). A distinct count keeps each cell's count, and the keys
found in more than one cell by their cells (``key_sets_table``): built whole from the whole
table, recorded as the partition ``keys`` with every counter of the tables read.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dataintel.services.analytics.catalog import (
    TABLES,
    AnalyticsCatalog,
    RollupDefinition,
)
from dataintel.services.analytics.planner import OPEN_RANGE_YEARS, Raw, raws_of, value_of
from dataintel.services.time_buckets import ZoneClock, bucket_key
from dataintel.store import tables
from dataintel.store.types import UTCDateTime

STATE_TABLE = "analytics_rollup_state"
TABLE_PREFIX = "analytics_rollup_"

rollup_state = tables.analytics_rollup_state
"""Per rollup and partition: what it was built from, and when (migration 0006)."""


@dataclass(frozen=True, slots=True)
class PartitionState:
    """A built partition: its definition digest, rows, the counters then, when it was built."""

    definition: str
    rows: int
    changes: int
    """The sum of the row_change_counts that apply to the partition, when it was built."""
    built_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshSummary:
    """What a build did to one rollup."""

    rollup: str
    rebuilt: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int
    rows: int
    recreated: bool


def rollup_raws(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> tuple[Raw, ...]:
    """The raw aggregates a rollup stores, one column each, in column order."""
    values = (value_of(catalog, catalog.measures[name]) for name in rollup.measures)
    return tuple(dict.fromkeys(raw for value in values for raw in raws_of(value)))


@functools.lru_cache(maxsize=256)
def definition_digest(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> str:
    """A digest of everything the rollup's rows depend on: a change means a rebuild."""
    source = catalog.sources[rollup.source]
    described = repr(
        (
            rollup.source,
            rollup.grain,
            rollup.zone,
            rollup.partition,
            source,
            catalog.dimensions[source.time_dimension],
            [catalog.dimensions[name] for name in rollup.dimensions],
            rollup_raws(catalog, rollup),
        )
    )
    return hashlib.sha256(described.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def rollup_table(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> sa.Table:
    """The table of a rollup: partition, grain start, dimension values, one column per raw.

    One Table object per catalog and rollup, so that routed statements hit SQLAlchemy's
    compiled cache like raw ones do.
    """
    metadata = sa.MetaData()
    return sa.Table(
        f"{TABLE_PREFIX}{rollup.name}",
        metadata,
        sa.Column("partition", sa.String(7), nullable=False, index=True),
        sa.Column("bucket", UTCDateTime, nullable=False, index=True),
        *(sa.Column(f"dimension_{name}", sa.String(200)) for name in rollup.dimensions),
        *(
            sa.Column(f"value_{index}", sa.BigInteger)
            for index in range(len(rollup_raws(catalog, rollup)))
        ),
    )


KEY_SETS = "keys"
"""The partition name of a rollup's key sets in its state: built whole, from the whole table."""


def distinct_raws(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> tuple[int, ...]:
    """The positions, among the rollup's raws, of its distinct counts."""
    raws = rollup_raws(catalog, rollup)
    return tuple(index for index, raw in enumerate(raws) if raw.function == "count_distinct")


@functools.lru_cache(maxsize=256)
def key_sets_table(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> sa.Table:
    """The cells of the keys of a rollup's distinct counts that occur in more than one cell.

    Keys with the same cells are one row per cell (``key_set``), with how many keys share
    them (``keys``): a distinct count's correction depends on a key only through its cells.
    ``raw`` is the distinct count's position among the rollup's raws, ``bucket`` a moment of
    the cell (its earliest one for these keys).
    """
    return sa.Table(
        f"{TABLE_PREFIX}{rollup.name}_keys",
        sa.MetaData(),
        sa.Column("raw", sa.Integer, nullable=False),
        sa.Column("key_set", sa.String(32), nullable=False),
        sa.Column("bucket", UTCDateTime, nullable=False, index=True),
        *(sa.Column(f"dimension_{name}", sa.String(200)) for name in rollup.dimensions),
        sa.Column("keys", sa.BigInteger, nullable=False),
    )


def column(reference: str) -> sa.Column[Any]:
    """The column of a table.column reference."""
    table, _, name = reference.partition(".")
    return TABLES[table].c[name]


@functools.lru_cache(maxsize=64)
def zone_clock(zone: str) -> ZoneClock:
    """The offsets of a rollup's zone over every year a store may hold."""
    return ZoneClock(ZoneInfo(zone), *OPEN_RANGE_YEARS)


def _month_start(local: datetime, zone: str) -> datetime:
    return zone_clock(zone).first_instant(local).astimezone(UTC)


def partition_bounds(partition: str, zone: str = "UTC") -> tuple[datetime, datetime]:
    """The UTC bounds of a partition key 'YYYY-MM': that month of the zone, end excluded."""
    year, month = (int(part) for part in partition.split("-"))
    start = _month_start(datetime(year, month, 1), zone)
    end = _month_start(datetime(year + month // 12, month % 12 + 1, 1), zone)
    return start, end


def partition_of(moment: datetime, zone: str = "UTC") -> str:
    """The partition key of a moment: its month in the zone."""
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def partitions_between(start: datetime, end: datetime, zone: str = "UTC") -> list[str]:
    """The keys of the zone's month partitions that overlap [start, end)."""
    keys: list[str] = []
    moment = start
    while moment < end:
        key = partition_of(moment, zone)
        keys.append(key)
        moment = partition_bounds(key, zone)[1]
    return keys


def counter_bounds(period: str) -> tuple[datetime, datetime]:
    """The UTC span of a row_change_counts period (a UTC month 'YYYY-MM')."""
    return partition_bounds(period)


@functools.lru_cache(maxsize=4096)
def _partitions_of_counter(period: str, zone: str) -> tuple[str, ...]:
    # Every freshness check maps a few dozen counters: the zone arithmetic is done once.
    return tuple(partitions_between(*counter_bounds(period), zone))


def _partition_key(moment: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    if dialect == "postgresql":
        local = sa.func.timezone(sa.literal_column("'UTC'"), moment)
        return sa.func.to_char(local, sa.literal_column("'YYYY-MM'"), type_=sa.String)
    return sa.func.strftime("%Y-%m", moment, type_=sa.String)


def _grain_start(moment: sa.ColumnElement[Any], grain: str, dialect: str) -> sa.ColumnElement[Any]:
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


def _cell(
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
        start = _grain_start(moment, "hour", dialect)
        return start, start
    periods = zone_clock(rollup.zone).periods_between(*span)
    key = bucket_key(moment, rollup.grain, periods, dialect)
    return key, sa.func.min(moment, type_=UTCDateTime)


def _read_tables(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> tuple[set[str], set[str]]:
    """The tables a rollup reads: those whose writes are filed under its partitions, others."""
    source = catalog.sources[rollup.source]
    time_column = catalog.dimensions[source.time_dimension].column
    read = {source.table, *(join.table for join in source.joins)}
    aligned = {table for table in read if tables.ROW_CHANGE_TIMES.get(table) == time_column}
    return aligned, read - aligned


def counters_statement(
    catalog: AnalyticsCatalog, rollups: Sequence[RollupDefinition]
) -> sa.Select[Any]:
    """The write counters of every table the rollups read (a few rows per table and month)."""
    read: set[str] = set()
    for rollup in rollups:
        aligned, others = _read_tables(catalog, rollup)
        read |= aligned | others
    counts = tables.row_change_counts
    return sa.select(counts.c.table_name, counts.c.period, counts.c.changes).where(
        counts.c.table_name.in_(sorted(read))
    )


def partition_changes(
    catalog: AnalyticsCatalog, rollup: RollupDefinition, counters: Sequence[Any]
) -> dict[str, int]:
    """Per partition holding rows (or having held some), the sum of the counters that apply.

    Those of the UTC months it overlaps (one for UTC's months, two for another zone's) and
    ``*``'s of the tables filed by the rollup's time, and every counter of the other tables
    it joins (their rows have no time of their own, or another one).
    """
    aligned, others = _read_tables(catalog, rollup)
    shared = 0
    by_partition: dict[str, int] = {}
    for row in counters:
        if row.table_name in others or (row.table_name in aligned and row.period == "*"):
            shared += int(row.changes)
        elif row.table_name in aligned:
            # A partition of a zone's month overlaps two UTC months: both counters apply.
            for partition in _partitions_of_counter(row.period, rollup.zone):
                by_partition[partition] = by_partition.get(partition, 0) + int(row.changes)
    found = {partition: changes + shared for partition, changes in by_partition.items()}
    if distinct_raws(catalog, rollup):
        # A key's cells span the whole table: every counter of every table read applies.
        found[KEY_SETS] = sum(
            int(row.changes) for row in counters if row.table_name in aligned | others
        )
    return found


async def current_changes(
    connection: AsyncConnection, catalog: AnalyticsCatalog, rollups: Sequence[RollupDefinition]
) -> dict[str, dict[str, int]]:
    """The counters that apply now, by rollup name and partition."""
    counters = (await connection.execute(counters_statement(catalog, rollups))).all()
    return {rollup.name: partition_changes(catalog, rollup, counters) for rollup in rollups}


def state_statement(
    rollups: Sequence[str], partitions: Sequence[str] | None = None
) -> sa.Select[Any]:
    """The recorded state of the rollups' partitions (all, or those named)."""
    statement = sa.select(rollup_state).where(rollup_state.c.rollup.in_(rollups))
    if partitions is not None:
        statement = statement.where(rollup_state.c.partition.in_(partitions))
    return statement


def states_of(rows: Sequence[Any]) -> dict[tuple[str, str], PartitionState]:
    """Partition states by (rollup, partition) from the rows of state_statement."""
    return {
        (row.rollup, row.partition): PartitionState(
            row.definition, int(row.rows), int(row.changes), row.built_at
        )
        for row in rows
    }


def _build_statement(
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    table: sa.Table,
    partition: str,
    dialect: str,
) -> sa.Insert:
    source = catalog.sources[rollup.source]
    moment = column(catalog.dimensions[source.time_dimension].column)
    start, end = partition_bounds(partition, rollup.zone)
    cell, bucket = _cell(moment, rollup, dialect, (start, end))
    dimensions = [column(catalog.dimensions[name].column) for name in rollup.dimensions]
    values = []
    for raw in rollup_raws(catalog, rollup):
        value: sa.ColumnElement[Any] = column(raw.column)
        if raw.where:
            condition = sa.and_(*(column(ref).in_(allowed) for ref, allowed in raw.where))
            value = sa.case((condition, value))
        if raw.function == "count_distinct":
            value = sa.distinct(value)
        values.append(sa.func.sum(value) if raw.function == "sum" else sa.func.count(value))
    select = (
        sa.select(sa.literal(partition, sa.String()), bucket, *dimensions, *values)
        .select_from(_joined(catalog, rollup))
        .where(moment >= start, moment < end)
        .group_by(cell, *dimensions)
    )
    return sa.insert(table).from_select(list(table.c.keys()), select)


def _joined(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> sa.FromClause:
    source = catalog.sources[rollup.source]
    joined: sa.FromClause = TABLES[source.table]
    for join in source.joins:
        condition = column(join.key) == column(join.references)
        joined = joined.join(TABLES[join.table], condition, isouter=join.optional)
    return joined


def _key_cells_statement(
    catalog: AnalyticsCatalog, rollup: RollupDefinition, raw: Raw, dialect: str
) -> sa.Select[Any]:
    """Each key in more than one cell with its cells (ordered by key), over the whole table.

    A key is in a cell when one of the cell's rows counts it: it passes the distinct count's
    ``where`` and is not null, as in ``count(DISTINCT ...)``.
    """
    source = catalog.sources[rollup.source]
    moment = column(catalog.dimensions[source.time_dimension].column)
    cell, _ = _cell(moment, rollup, dialect, (None, None))
    key = column(raw.column)
    dimensions = [
        column(catalog.dimensions[name].column).label(f"dimension_{name}")
        for name in rollup.dimensions
    ]
    conditions = [key.is_not(None), *(column(ref).in_(allowed) for ref, allowed in raw.where)]
    # The cell's key is computed in a subquery and grouped by as a column: PostgreSQL would
    # not see an expression with bound parameters in the select list as the one grouped by.
    rows = (
        sa.select(key.label("key"), cell.label("cell"), *dimensions, moment.label("moment"))
        .select_from(_joined(catalog, rollup))
        .where(*conditions)
        .subquery("key_rows")
    )
    names = ["key", "cell", *(f"dimension_{name}" for name in rollup.dimensions)]
    cells = (
        sa.select(
            *(rows.c[name] for name in names),
            sa.func.min(rows.c.moment, type_=UTCDateTime).label("bucket"),
        )
        .group_by(*(rows.c[name] for name in names))
        .subquery("cells")
    )
    spread = sa.select(
        *cells.c, sa.func.count().over(partition_by=cells.c.key).label("spread")
    ).subquery("spread")
    return (
        sa.select(*(spread.c[name] for name in [*names, "bucket"]))
        .where(spread.c.spread > 1)
        .order_by(spread.c.key)
    )


async def _fill_key_sets(
    connection: AsyncConnection, catalog: AnalyticsCatalog, rollup: RollupDefinition, dialect: str
) -> int:
    """Inserts the key sets of every distinct count of the rollup; the rows inserted."""
    table = key_sets_table(catalog, rollup)
    raws = rollup_raws(catalog, rollup)
    dimension_names = [f"dimension_{name}" for name in rollup.dimensions]
    inserted = 0
    for position in distinct_raws(catalog, rollup):
        statement = _key_cells_statement(catalog, rollup, raws[position], dialect)
        found = (await connection.execute(statement)).all()
        shared: dict[tuple[str, ...], tuple[int, list[Any]]] = {}
        for _key, rows in itertools.groupby(found, key=lambda row: row.key):
            cells = sorted(rows, key=lambda row: repr((str(row.cell), *row[2:-1])))
            signature = tuple(repr((str(row.cell), *row[2:-1])) for row in cells)
            count, first = shared.get(signature, (0, cells))
            shared[signature] = (count + 1, first)
        records = [
            {
                "raw": position,
                "key_set": hashlib.sha256(repr(signature).encode()).hexdigest()[:32],
                "bucket": row.bucket,
                **{name: row._mapping[name] for name in dimension_names},
                "keys": count,
            }
            for signature, (count, cells) in shared.items()
            for row in cells
        ]
        if records:
            await connection.execute(sa.insert(table), records)
        inserted += len(records)
    return inserted


async def _prepare(
    connection: AsyncConnection, catalog: AnalyticsCatalog, rollup: RollupDefinition
) -> bool:
    """Creates the state and rollup tables as needed; True when the rollup was recreated."""
    await connection.run_sync(rollup_state.create, checkfirst=True)
    table = rollup_table(catalog, rollup)
    digest = definition_digest(catalog, rollup)
    recorded = (
        await connection.execute(
            sa.select(rollup_state.c.definition)
            .where(rollup_state.c.rollup == rollup.name)
            .distinct()
        )
    ).scalars()
    exists = await connection.run_sync(lambda sync: sa.inspect(sync).has_table(table.name))
    # Without any recorded state (a new state table after migration 0007, or a first build
    # that failed), rows left in the table are nobody's: start from an empty table.
    sets = key_sets_table(catalog, rollup) if distinct_raws(catalog, rollup) else None
    if exists and set(recorded) == {digest}:
        if sets is not None:
            await connection.run_sync(sets.create, checkfirst=True)
        return False
    await connection.run_sync(table.drop, checkfirst=True)
    await connection.run_sync(table.create)
    if sets is not None:
        await connection.run_sync(sets.drop, checkfirst=True)
        await connection.run_sync(sets.create)
    await connection.execute(sa.delete(rollup_state).where(rollup_state.c.rollup == rollup.name))
    return True


async def refresh_rollup(
    engine: AsyncEngine,
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    *,
    partitions: Sequence[str] | None = None,
    full: bool = False,
) -> RefreshSummary:
    """Rebuilds the partitions that need it: those named, all, or those whose source changed."""
    async with engine.begin() as connection:
        recreated = await _prepare(connection, catalog, rollup)
        current = (await current_changes(connection, catalog, [rollup]))[rollup.name]
        recorded = states_of((await connection.execute(state_statement([rollup.name]))).all())
    digest = definition_digest(catalog, rollup)
    built = {partition: state for (_, partition), state in recorded.items()}
    if partitions is not None:
        chosen = sorted(set(partitions))
    elif full or rollup.refresh == "all_partitions":
        chosen = sorted(set(current) | set(built))
    else:
        chosen = sorted(
            partition
            for partition in set(current) | set(built)
            if partition not in built
            or partition not in current
            or built[partition].definition != digest
            or built[partition].changes != current[partition]
        )
    table = rollup_table(catalog, rollup)
    rebuilt: list[str] = []
    removed: list[str] = []
    rows = 0
    for partition in chosen:
        inserted = await _swap_partition(engine, catalog, rollup, table, partition, digest)
        if inserted == 0:
            removed.append(partition)
        else:
            rebuilt.append(partition)
            rows += inserted
    unchanged = len(set(current) | set(built)) - len(set(chosen) & (set(current) | set(built)))
    return RefreshSummary(rollup.name, tuple(rebuilt), tuple(removed), unchanged, rows, recreated)


async def _swap_partition(
    engine: AsyncEngine,
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    table: sa.Table,
    partition: str,
    digest: str,
) -> int:
    """Replaces one partition in one transaction; the number of rows it now holds."""
    dialect = engine.dialect.name
    async with engine.connect() as connection:
        if dialect == "postgresql":
            # One snapshot for the rows aggregated and the counters recorded with them.
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            # On SQLite the first write takes the store's write lock: no write lands between
            # the aggregation and the counters read below.
            if partition == KEY_SETS:
                await connection.execute(sa.delete(key_sets_table(catalog, rollup)))
            else:
                await connection.execute(sa.delete(table).where(table.c.partition == partition))
            await connection.execute(
                sa.delete(rollup_state).where(
                    rollup_state.c.rollup == rollup.name, rollup_state.c.partition == partition
                )
            )
            if partition == KEY_SETS:
                inserted = await _fill_key_sets(connection, catalog, rollup, dialect)
            else:
                result = await connection.execute(
                    _build_statement(catalog, rollup, table, partition, dialect)
                )
                inserted = int(result.rowcount or 0)
            changes = (await current_changes(connection, catalog, [rollup]))[rollup.name]
            # Recorded even when empty (every row deleted): the partition is then current
            # with no rows, and routing knows it holds nothing rather than nothing known.
            await connection.execute(
                sa.insert(rollup_state).values(
                    rollup=rollup.name,
                    partition=partition,
                    definition=digest,
                    rows=inserted,
                    changes=changes.get(partition, 0),
                    built_at=datetime.now(UTC),
                )
            )
            return inserted


async def refresh_rollups(
    engine: AsyncEngine,
    catalog: AnalyticsCatalog,
    names: Sequence[str] | None = None,
    *,
    partitions: Sequence[str] | None = None,
    full: bool = False,
) -> list[RefreshSummary]:
    """Refreshes the rollups named (all by default), one after the other."""
    chosen: Mapping[str, RollupDefinition] = (
        {name: catalog.rollups[name] for name in names} if names else catalog.rollups
    )
    return [
        await refresh_rollup(engine, catalog, rollup, partitions=partitions, full=full)
        for rollup in chosen.values()
    ]
