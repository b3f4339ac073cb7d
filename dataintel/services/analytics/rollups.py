"""Rollup tables: a source's sums and counts by UTC hour, built one UTC month at a time.

Rollups are derived data, so the build creates their tables itself (no migration): a table
per rollup (``analytics_rollup_<name>``). The state table (migration 0006) records, per
partition, the definition it was built from and the source's fingerprint at that moment. A rollup
whose definition changed is dropped and rebuilt whole.

The fingerprint of a partition is the count, the latest time value and the sum of the
primary keys of the source's rows in it, and the count of in-place updates of the tables it
reads. The first three change when rows are added (late rows included), deleted or moved in
time; they are cheap to compute (the source's time index, without the dimension joins). The
last comes from ``row_change_counts``, which the store's triggers keep (migration 0006): the
updated rows per table and UTC month of the row's time, so an order whose total changed
stales its month, and a customer whose region changed (a table without a time of its own)
stales every partition of the rollups that join customers. A query checks all four on every
read.

A partition is swapped in one transaction (delete, insert, record), so a reader sees either
the old partition or the new one, never half of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dataintel.services.analytics.catalog import (
    TABLES,
    AnalyticsCatalog,
    RollupDefinition,
    SourceDefinition,
)
from dataintel.services.analytics.planner import Raw, raws_of, value_of
from dataintel.store import tables
from dataintel.store.types import UTCDateTime

STATE_TABLE = "analytics_rollup_state"
TABLE_PREFIX = "analytics_rollup_"

rollup_state = tables.analytics_rollup_state
"""Per rollup and partition: what it was built from, and when (migration 0006)."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a partition's source rows looked like: number, latest time, key sum, updates."""

    row_count: int
    max_time: datetime | None
    key_sum: int
    changes: int = 0
    """In-place updates counted in row_change_counts for the tables the rollup reads."""


@dataclass(frozen=True, slots=True)
class PartitionState:
    """A built partition: its definition digest, its source's fingerprint, when it was built."""

    definition: str
    fingerprint: Fingerprint
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


def definition_digest(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> str:
    """A digest of everything the rollup's rows depend on: a change means a rebuild."""
    source = catalog.sources[rollup.source]
    described = repr(
        (
            rollup.source,
            rollup.grain,
            rollup.partition,
            source,
            catalog.dimensions[source.time_dimension],
            [catalog.dimensions[name] for name in rollup.dimensions],
            rollup_raws(catalog, rollup),
        )
    )
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def rollup_table(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> sa.Table:
    """The table of a rollup: partition, UTC hour, dimension values, one column per raw."""
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


def column(reference: str) -> sa.Column[Any]:
    """The column of a table.column reference."""
    table, _, name = reference.partition(".")
    return TABLES[table].c[name]


def _time_from(source: SourceDefinition, time_table: str) -> sa.FromClause:
    """The source's table with only the joins that reach its time column."""
    needed = {time_table}
    for join in reversed(source.joins):
        if join.table in needed:
            needed.add(join.key.partition(".")[0])
    joined: sa.FromClause = TABLES[source.table]
    for join in source.joins:
        if join.table in needed:
            condition = column(join.key) == column(join.references)
            joined = joined.join(TABLES[join.table], condition, isouter=join.optional)
    return joined


def partition_bounds(partition: str) -> tuple[datetime, datetime]:
    """The UTC month of a partition key 'YYYY-MM', start included, end excluded."""
    year, month = (int(part) for part in partition.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def partition_of(moment: datetime) -> str:
    """The partition key of a moment: its UTC month."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def _partition_key(moment: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    if dialect == "postgresql":
        local = sa.func.timezone(sa.literal_column("'UTC'"), moment)
        return sa.func.to_char(local, sa.literal_column("'YYYY-MM'"), type_=sa.String)
    return sa.func.strftime("%Y-%m", moment, type_=sa.String)


def _hour(moment: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    # The stored form of the hour's start on each dialect, so that it compares like the
    # source's own time values.
    if dialect == "postgresql":
        utc: sa.ColumnElement[str] = sa.literal_column("'UTC'")
        local_hour = sa.func.date_trunc(sa.literal_column("'hour'"), sa.func.timezone(utc, moment))
        return sa.func.timezone(utc, local_hour, type_=UTCDateTime)
    return sa.func.strftime("%Y-%m-%d %H:00:00.000000", moment, type_=UTCDateTime)


def fingerprints_statement(
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    dialect: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> sa.Select[Any]:
    """(partition, count, max time, key sum, updates) of the source's rows, by partition."""
    source = catalog.sources[rollup.source]
    time = catalog.dimensions[source.time_dimension]
    moment = column(time.column)
    key = next(iter(TABLES[source.table].primary_key.columns))
    partition = _partition_key(moment, dialect).label("partition")
    conditions = []
    if start is not None:
        conditions.append(moment >= start)
    if end is not None:
        conditions.append(moment < end)
    grouped = (
        sa.select(
            partition,
            sa.func.count().label("row_count"),
            sa.func.max(moment).label("max_time"),
            sa.func.coalesce(sa.func.sum(key), 0).label("key_sum"),
        )
        .select_from(_time_from(source, time.table))
        .where(*conditions)
        .group_by(partition)
        .subquery("fingerprints")
    )
    # A partition's updates: its own month's and '*' of the tables filed by the rollup's
    # time, and every update of the other tables it joins (their time is not its own).
    aligned, others = _read_tables(catalog, rollup)
    counts = tables.row_change_counts
    applies = sa.or_(
        sa.and_(
            counts.c.table_name.in_(sorted(aligned)),
            sa.or_(counts.c.period == grouped.c.partition, counts.c.period == "*"),
        ),
        counts.c.table_name.in_(sorted(others)),
    )
    changes = (
        sa.select(sa.func.coalesce(sa.func.sum(counts.c.changes), 0))
        .where(applies)
        .scalar_subquery()
    )
    return sa.select(grouped, changes.label("changes"))


def _read_tables(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> tuple[set[str], set[str]]:
    """The tables a rollup reads: those whose updates are filed under its partitions, others."""
    source = catalog.sources[rollup.source]
    time_column = catalog.dimensions[source.time_dimension].column
    read = {source.table, *(join.table for join in source.joins)}
    aligned = {table for table in read if tables.ROW_CHANGE_TIMES.get(table) == time_column}
    return aligned, read - aligned


def fingerprints_of(rows: Sequence[Any]) -> dict[str, Fingerprint]:
    """Fingerprints by partition from the rows of fingerprints_statement."""
    return {
        row.partition: Fingerprint(
            int(row.row_count), row.max_time, int(row.key_sum), int(row.changes)
        )
        for row in rows
    }


async def current_fingerprints(
    connection: AsyncConnection,
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Fingerprint]:
    """The source's fingerprints now, by partition (of the range given, or all)."""
    statement = fingerprints_statement(catalog, rollup, connection.dialect.name, start, end)
    return fingerprints_of((await connection.execute(statement)).all())


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
            row.definition,
            Fingerprint(int(row.row_count), row.max_time, int(row.key_sum), int(row.changes)),
            row.built_at,
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
    start, end = partition_bounds(partition)
    hour = _hour(moment, dialect)
    dimensions = [column(catalog.dimensions[name].column) for name in rollup.dimensions]
    values = []
    for raw in rollup_raws(catalog, rollup):
        value: sa.ColumnElement[Any] = column(raw.column)
        if raw.where:
            condition = sa.and_(*(column(ref).in_(allowed) for ref, allowed in raw.where))
            value = sa.case((condition, value))
        values.append(sa.func.sum(value) if raw.function == "sum" else sa.func.count(value))
    joined: sa.FromClause = TABLES[source.table]
    for join in source.joins:
        condition = column(join.key) == column(join.references)
        joined = joined.join(TABLES[join.table], condition, isouter=join.optional)
    select = (
        sa.select(sa.literal(partition, sa.String()), hour, *dimensions, *values)
        .select_from(joined)
        .where(moment >= start, moment < end)
        .group_by(hour, *dimensions)
    )
    return sa.insert(table).from_select(list(table.c.keys()), select)


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
    if exists and set(recorded) <= {digest}:
        return False
    await connection.run_sync(table.drop, checkfirst=True)
    await connection.run_sync(table.create)
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
        current = await current_fingerprints(connection, catalog, rollup)
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
            or built[partition].fingerprint != current[partition]
        )
    table = rollup_table(catalog, rollup)
    rebuilt: list[str] = []
    removed: list[str] = []
    rows = 0
    for partition in chosen:
        inserted = await _swap_partition(engine, catalog, rollup, table, partition, digest)
        if inserted is None:
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
) -> int | None:
    """Replaces one partition in one transaction; its row count, None when the source has none."""
    dialect = engine.dialect.name
    start, end = partition_bounds(partition)
    async with engine.connect() as connection:
        if dialect == "postgresql":
            # One snapshot for the rows aggregated and the fingerprint recorded with them.
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            await connection.execute(sa.delete(table).where(table.c.partition == partition))
            await connection.execute(
                sa.delete(rollup_state).where(
                    rollup_state.c.rollup == rollup.name, rollup_state.c.partition == partition
                )
            )
            found = (await current_fingerprints(connection, catalog, rollup, start, end)).get(
                partition
            )
            if found is None:
                return None
            result = await connection.execute(
                _build_statement(catalog, rollup, table, partition, dialect)
            )
            await connection.execute(
                sa.insert(rollup_state).values(
                    rollup=rollup.name,
                    partition=partition,
                    definition=digest,
                    row_count=found.row_count,
                    max_time=found.max_time,
                    key_sum=found.key_sum,
                    changes=found.changes,
                    built_at=datetime.now(UTC),
                )
            )
            return int(result.rowcount or 0)


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
