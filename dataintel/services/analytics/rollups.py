"""Rollup tables: a source's sums and counts by UTC hour (or day), partitioned by UTC day.

Rollups are derived data, so the build creates their tables itself (no migration): a table
per rollup (``analytics_rollup_<name>``). The state table (migration 0008) records, per
partition, the definition it was built from, its row count and the write counters of the
tables it reads at that moment. A rollup whose definition changed is dropped and rebuilt whole.

A partition is a UTC day ('YYYY-MM-DD', the default) or a UTC month ('YYYY-MM'); every
question about one goes through its UTC bounds (``partition_bounds``), so that a partition
of another shape needs only that and ``partitions_over``.

The store counts every row written (inserted, deleted, or updated: old and new) per table and
UTC day of the row's time in ``row_change_counts`` (triggers, migration 0008; ``*`` for
tables without a time, such as customers). The counters only grow, so a partition is current
while the counters it was built at are the counters now: those of its days (and ``*``) of the
tables filed by the rollup's time, plus every counter of the other tables it joins. Late rows
count in their day, deletes in theirs, a re-timed row in both, a customer moved to another
region in every partition of the rollups that join customers. Checking a range reads the
counters of its days (a range scan of the counters' primary key), whatever the size of the
source.

Partitions are swapped in one transaction (delete, insert, record), reading the counters in
the same snapshot as the rows, so a reader sees either the old partitions or the new ones. A
transaction swaps a run of adjacent partitions at once (at most ``SWAP_SPAN`` of time): a full
build of day partitions then costs about as many statements as one of month partitions did.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dataintel.services.analytics.catalog import (
    TABLES,
    AnalyticsCatalog,
    RollupDefinition,
)
from dataintel.services.analytics.planner import Raw, raws_of, value_of
from dataintel.store import tables
from dataintel.store.types import UTCDateTime

STATE_TABLE = "analytics_rollup_state"
TABLE_PREFIX = "analytics_rollup_"

rollup_state = tables.analytics_rollup_state
"""Per rollup and partition: what it was built from, and when (migration 0008)."""

SWAP_SPAN = timedelta(days=31)
"""The most time one swap transaction rebuilds: adjacent partitions are swapped together up to
it, so that a full build of days is not one transaction per day (measured in docs/analytics.md:
about as fast as month partitions were), while a refresh of scattered days stays per day."""

Span = tuple[datetime, datetime]
"""A UTC time range, start included, end excluded."""


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
        sa.Column("partition", sa.String(10), nullable=False, index=True),
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


# Per partitioning: the key's Python format and PostgreSQL's.
_KEY_FORMATS = {"day": ("%Y-%m-%d", "YYYY-MM-DD"), "month": ("%Y-%m", "YYYY-MM")}


def partition_bounds(partition: str) -> Span:
    """The UTC span of a partition key: a day 'YYYY-MM-DD' or a month 'YYYY-MM'."""
    parts = [int(part) for part in partition.split("-")]
    if len(parts) == 3:
        start = datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
        return start, start + timedelta(days=1)
    year, month = parts
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def partition_of(moment: datetime, unit: str) -> str:
    """The key of the partition (of a rollup partitioned by ``unit``) holding a moment."""
    return moment.astimezone(UTC).strftime(_KEY_FORMATS[unit][0])


def partitions_over(unit: str, span: Span) -> tuple[str, str]:
    """The first and last partition keys whose bounds overlap a span (keys sort by time)."""
    start, end = span
    return partition_of(start, unit), partition_of(end - timedelta(microseconds=1), unit)


def _span_of(keys: Sequence[str]) -> Span:
    bounds = [partition_bounds(key) for key in keys]
    return min(start for start, _ in bounds), max(end for _, end in bounds)


def _partition_of_bucket(
    bucket: sa.ColumnElement[Any], unit: str, dialect: str
) -> sa.ColumnElement[str]:
    """The partition key of a stored grain start (``_grain_start``)."""
    if dialect == "postgresql":
        local = sa.func.timezone(sa.literal_column("'UTC'"), bucket)
        postgres = _KEY_FORMATS[unit][1]
        return sa.func.to_char(local, sa.literal_column(f"'{postgres}'"), type_=sa.String)
    # SQLite stores it as text 'YYYY-MM-DD HH:MM:SS.ffffff': the key is its first characters.
    length = len(datetime(2000, 1, 1, tzinfo=UTC).strftime(_KEY_FORMATS[unit][0]))
    return sa.func.substr(bucket, 1, length, type_=sa.String)


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


def _read_tables(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> tuple[set[str], set[str]]:
    """The tables a rollup reads: those whose writes are filed under its partitions, others."""
    source = catalog.sources[rollup.source]
    time_column = catalog.dimensions[source.time_dimension].column
    read = {source.table, *(join.table for join in source.joins)}
    aligned = {table for table in read if tables.ROW_CHANGE_TIMES.get(table) == time_column}
    return aligned, read - aligned


def counters_statement(
    catalog: AnalyticsCatalog, rollups: Sequence[RollupDefinition], span: Span | None = None
) -> sa.Select[Any]:
    """The write counters that apply to the rollups' partitions (overlapping ``span``, if given).

    The counters of a table filed by a rollup's time are read over the span's UTC days (a
    range of the primary key) and ``*``; those of the other tables joined are read whole.
    """
    aligned: set[str] = set()
    others: set[str] = set()
    for rollup in rollups:
        filed, joined = _read_tables(catalog, rollup)
        aligned |= filed
        others |= joined
    counts = tables.row_change_counts
    statement = sa.select(counts.c.table_name, counts.c.period, counts.c.changes)
    if span is None:
        return statement.where(counts.c.table_name.in_(sorted(aligned | others)))
    first, last = partitions_over("day", span)
    in_span = sa.or_(counts.c.period == tables.ALL_PERIODS, counts.c.period.between(first, last))
    filed_in_span = sa.and_(counts.c.table_name.in_(sorted(aligned - others)), in_span)
    if not others:
        return statement.where(filed_in_span)
    return statement.where(sa.or_(filed_in_span, counts.c.table_name.in_(sorted(others))))


def _partition_of_period(rollup: RollupDefinition, period: str) -> str:
    # A counter's period is a UTC day, which lies in exactly one UTC day or month partition.
    return period if rollup.partition == "day" else period[:7]


def partition_changes(
    catalog: AnalyticsCatalog, rollup: RollupDefinition, counters: Sequence[Any]
) -> dict[str, int]:
    """Per partition holding rows (or having held some), the sum of the counters that apply.

    Those of its days and ``*`` of the tables filed by the rollup's time, and every counter of
    the other tables it joins (their rows have no time of their own, or another one).
    """
    aligned, others = _read_tables(catalog, rollup)
    shared = 0
    by_partition: dict[str, int] = {}
    # Hundreds of rows per table with days, read at every routed query: kept to plain tuples.
    for table_name, period, changes in counters:
        if table_name in others or (table_name in aligned and period == tables.ALL_PERIODS):
            shared += int(changes)
        elif table_name in aligned:
            key = _partition_of_period(rollup, period)
            by_partition[key] = by_partition.get(key, 0) + int(changes)
    return {partition: changes + shared for partition, changes in by_partition.items()}


async def current_changes(
    connection: AsyncConnection,
    catalog: AnalyticsCatalog,
    rollups: Sequence[RollupDefinition],
    span: Span | None = None,
) -> dict[str, dict[str, int]]:
    """The counters that apply now, by rollup name and partition (those overlapping ``span``).

    With a span, partitions that reach beyond it may come out with partial sums: ask for
    the union of the bounds of the partitions wanted (``touched_span``).
    """
    counters = (await connection.execute(counters_statement(catalog, rollups, span))).all()
    return {rollup.name: partition_changes(catalog, rollup, counters) for rollup in rollups}


def touched_span(rollups: Sequence[RollupDefinition], span: Span) -> Span:
    """The union of the bounds of the rollups' partitions that overlap a span."""
    keys = [key for rollup in rollups for key in partitions_over(rollup.partition, span)]
    return _span_of(keys)


def state_statement(rollups: Sequence[str], span: Span | None = None) -> sa.Select[Any]:
    """The recorded state of the rollups' partitions (all, or at least those overlapping span).

    Keys sort by time, a month's key just before its first day's, so one key range covers
    the day and month partitions over the span (a range scan of the primary key).
    """
    statement = sa.select(rollup_state).where(rollup_state.c.rollup.in_(rollups))
    if span is not None:
        first = partitions_over("month", span)[0]
        last = partitions_over("day", span)[1]
        statement = statement.where(rollup_state.c.partition.between(first, last))
    return statement


def states_of(rows: Sequence[Any]) -> dict[tuple[str, str], PartitionState]:
    """Partition states by (rollup, partition) from the rows of state_statement."""
    # A routed query reads a state row per day of its range: plain tuples, not attributes.
    return {
        (rollup, partition): PartitionState(definition, int(count), int(changes), built_at)
        for rollup, partition, definition, count, changes, built_at in rows
    }


def _build_statement(
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    table: sa.Table,
    span: Span,
    dialect: str,
) -> sa.Insert:
    source = catalog.sources[rollup.source]
    moment = column(catalog.dimensions[source.time_dimension].column)
    start, end = span
    hour = _grain_start(moment, rollup.grain, dialect)
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
    grouped = (
        sa.select(
            hour.label("bucket"),
            *(dimension.label(f"d{index}") for index, dimension in enumerate(dimensions)),
            *(value.label(f"v{index}") for index, value in enumerate(values)),
        )
        .select_from(joined)
        .where(moment >= start, moment < end)
        .group_by(hour, *dimensions)
        .subquery()
    )
    # Each aggregate's partition, from its grain's start (a grain lies in one partition), so
    # that one statement builds several partitions; computed on the aggregates, not per row.
    partition = _partition_of_bucket(grouped.c.bucket, rollup.partition, dialect)
    return sa.insert(table).from_select(list(table.c.keys()), sa.select(partition, *grouped.c))


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
    if exists and set(recorded) == {digest}:
        return False
    await connection.run_sync(table.drop, checkfirst=True)
    await connection.run_sync(table.create)
    await connection.execute(sa.delete(rollup_state).where(rollup_state.c.rollup == rollup.name))
    return True


def named_partitions(unit: str, named: Sequence[str], known: set[str]) -> list[str]:
    """A rollup's partitions that named keys (days or months) cover.

    A key of the rollup's own shape is itself; a wider one (a month of a rollup by day) is
    those of its partitions that hold rows or were built; a narrower one (a day of a rollup
    by month) is the partition holding it.
    """
    chosen: set[str] = set()
    for key in named:
        first, last = partitions_over(unit, partition_bounds(key))
        if first == last:
            chosen.add(first)
        else:
            chosen.update(partition for partition in known if first <= partition <= last)
    return sorted(chosen)


def swap_runs(partitions: Sequence[str]) -> list[list[str]]:
    """Sorted partitions in runs of adjacent ones, each spanning at most SWAP_SPAN."""
    runs: list[list[str]] = []
    run_start = run_end = None
    for partition in sorted(partitions):
        start, end = partition_bounds(partition)
        if runs and run_start is not None and start == run_end and end - run_start <= SWAP_SPAN:
            runs[-1].append(partition)
        else:
            runs.append([partition])
            run_start = start
        run_end = end
    return runs


async def refresh_rollup(
    engine: AsyncEngine,
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    *,
    partitions: Sequence[str] | None = None,
    full: bool = False,
) -> RefreshSummary:
    """Rebuilds the partitions that need it: those named (days or months), all, or those
    whose counters moved."""
    async with engine.begin() as connection:
        recreated = await _prepare(connection, catalog, rollup)
        current = (await current_changes(connection, catalog, [rollup]))[rollup.name]
        recorded = states_of((await connection.execute(state_statement([rollup.name]))).all())
    digest = definition_digest(catalog, rollup)
    built = {partition: state for (_, partition), state in recorded.items()}
    known = set(current) | set(built)
    if partitions is not None:
        chosen = named_partitions(rollup.partition, partitions, known)
    elif full or rollup.refresh == "all_partitions":
        chosen = sorted(known)
    else:
        chosen = sorted(
            partition
            for partition in known
            if partition not in built
            or partition not in current
            or built[partition].definition != digest
            or built[partition].changes != current[partition]
        )
    table = rollup_table(catalog, rollup)
    rebuilt: list[str] = []
    removed: list[str] = []
    rows = 0
    for run in swap_runs(chosen):
        inserted = await _swap_partitions(engine, catalog, rollup, table, run, digest)
        for partition in run:
            if inserted.get(partition, 0) == 0:
                removed.append(partition)
            else:
                rebuilt.append(partition)
                rows += inserted[partition]
    unchanged = len(known) - len(set(chosen) & known)
    return RefreshSummary(rollup.name, tuple(rebuilt), tuple(removed), unchanged, rows, recreated)


async def _swap_partitions(
    engine: AsyncEngine,
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    table: sa.Table,
    partitions: Sequence[str],
    digest: str,
) -> dict[str, int]:
    """Replaces adjacent partitions in one transaction; the rows each now holds."""
    dialect = engine.dialect.name
    span = _span_of(partitions)
    first, last = partitions[0], partitions[-1]
    async with engine.connect() as connection:
        if dialect == "postgresql":
            # One snapshot for the rows aggregated and the counters recorded with them.
            connection = await connection.execution_options(isolation_level="REPEATABLE READ")
        async with connection.begin():
            # On SQLite the first write takes the store's write lock: no write lands between
            # the aggregation and the counters read below. The partitions are adjacent, so
            # their keys are exactly those of the key range.
            await connection.execute(sa.delete(table).where(table.c.partition.between(first, last)))
            await connection.execute(
                sa.delete(rollup_state).where(
                    rollup_state.c.rollup == rollup.name,
                    rollup_state.c.partition.between(first, last),
                )
            )
            await connection.execute(_build_statement(catalog, rollup, table, span, dialect))
            inserted: dict[str, int] = {
                partition: int(count)
                for partition, count in await connection.execute(
                    sa.select(table.c.partition, sa.func.count())
                    .where(table.c.partition.between(first, last))
                    .group_by(table.c.partition)
                )
            }
            changes = (await current_changes(connection, catalog, [rollup], span))[rollup.name]
            built_at = datetime.now(UTC)
            # Recorded even when empty (every row deleted): the partition is then current
            # with no rows, and routing knows it holds nothing rather than nothing known.
            await connection.execute(
                sa.insert(rollup_state),
                [
                    {
                        "rollup": rollup.name,
                        "partition": partition,
                        "definition": digest,
                        "rows": inserted.get(partition, 0),
                        "changes": changes.get(partition, 0),
                        "built_at": built_at,
                    }
                    for partition in partitions
                ],
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
