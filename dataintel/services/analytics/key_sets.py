"""The keys of a rollup's distinct counts found in more than one cell, kept by their cells.

A distinct count stored per cell is exact for that cell; summed over the cells of a coarser
bucket, a grouping or a total, it counts a key once per cell of the sum that holds it. So per
distinct count a rollup keeps the keys found in more than one cell, twice:

- ``key_sets_table``, which routed queries read: keys with the same cells are one row per
  cell (``key_set``, a digest of the cells) with how many keys share them (``keys``); a query
  subtracts ``keys x (cells of the set in the group - 1)`` per group. Keys share cells often
  (a session over two adjacent days of one region and tier), so it stays small.
- ``key_cells_table``, which refreshes read: per such key, its key set and every partition
  one of its cells lies in.

Both are kept in the transaction that swaps a run of partitions (``refresh_key_sets``), for
the keys the run touches: those counted by a row in the run's span now, and those stored
with a cell in one of its partitions (counted there before). Each is read again from the
source, all its rows by the index on the key column (migration 0009), and moves from its old
set to its new one; the sets' counts change by the difference. A refresh of a day so costs
that day's keys and their rows, not the table.

Why a routed query's corrections stay exact: it reads only current partitions, and only the
cells in its range. A key's cells in a current partition are those it had there when the
partition was built (its rows there have not changed since), and that build read again
every key counted there, or counted there before. A key read again later (for another
partition) sees the same rows there. Cells in a stale partition may be out of date, but no
routed range holds them.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.services.analytics.catalog import AnalyticsCatalog, RollupDefinition
from dataintel.services.analytics.planner import Raw
from dataintel.services.analytics.rollup_cells import (
    TABLE_PREFIX,
    cell_of,
    column,
    distinct_raws,
    joined_source,
    partition_of,
    rollup_raws,
)
from dataintel.store.types import UTCDateTime

KEYS_PER_STATEMENT = 5_000
"""Keys per statement that reads or deletes by key: under every driver's parameter limit
(32,766 for SQLite, 32,767 for asyncpg), and many, because PostgreSQL joins a statement's
events to customers by hashing the customers once per statement."""


@functools.lru_cache(maxsize=256)
def key_sets_table(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> sa.Table:
    """The cells of the keys of a rollup's distinct counts that occur in more than one cell.

    ``raw`` is the distinct count's position among the rollup's raws, ``bucket`` a moment of
    the cell (the earliest of one of its keys there), ``keys`` how many keys have exactly the
    cells of the set.
    """
    return sa.Table(
        f"{TABLE_PREFIX}{rollup.name}_keys",
        sa.MetaData(),
        sa.Column("raw", sa.Integer, nullable=False),
        sa.Column("key_set", sa.String(32), nullable=False),
        sa.Column("bucket", UTCDateTime, nullable=False, index=True),
        *(sa.Column(f"dimension_{name}", sa.String(200)) for name in rollup.dimensions),
        sa.Column("keys", sa.BigInteger, nullable=False),
        sa.Index(None, "raw", "key_set"),
    )


@functools.lru_cache(maxsize=256)
def key_cells_table(catalog: AnalyticsCatalog, rollup: RollupDefinition, position: int) -> sa.Table:
    """Per key of a distinct count (the raw at ``position``) in more than one cell: its key
    set, once per partition holding one of its cells. The key keeps its source column's type."""
    key_type = column(rollup_raws(catalog, rollup)[position].column).type
    return sa.Table(
        f"{TABLE_PREFIX}{rollup.name}_key_cells_{position}",
        sa.MetaData(),
        sa.Column("key", key_type, primary_key=True),
        sa.Column("partition", sa.String(10), primary_key=True, index=True),
        sa.Column("key_set", sa.String(32), nullable=False),
    )


def key_set_tables(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> list[sa.Table]:
    """Every table that keeps a rollup's key sets; none without distinct counts."""
    positions = distinct_raws(catalog, rollup)
    if not positions:
        return []
    return [
        key_sets_table(catalog, rollup),
        *(key_cells_table(catalog, rollup, position) for position in positions),
    ]


def _chunks(keys: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(keys), KEYS_PER_STATEMENT):
        yield keys[start : start + KEYS_PER_STATEMENT]


def _counted(raw: Raw) -> list[sa.ColumnElement[bool]]:
    # A key is in a cell when one of the cell's rows counts it, as in count(DISTINCT ...):
    # not null, and passing the distinct count's where.
    key = column(raw.column)
    return [key.is_not(None), *(column(ref).in_(allowed) for ref, allowed in raw.where)]


def _touched_statement(
    catalog: AnalyticsCatalog, rollup: RollupDefinition, raw: Raw, span: tuple[Any, Any]
) -> sa.Select[Any]:
    """The keys a row of the span counts now."""
    moment = column(catalog.dimensions[catalog.sources[rollup.source].time_dimension].column)
    return (
        sa.select(column(raw.column))
        .select_from(joined_source(catalog.sources[rollup.source]))
        .where(moment >= span[0], moment < span[1], *_counted(raw))
        .distinct()
    )


@functools.lru_cache(maxsize=64)
def _cells_statement(
    catalog: AnalyticsCatalog, rollup: RollupDefinition, position: int, dialect: str
) -> sa.Select[Any]:
    """The cells of some keys (``keys``, expanding) over the whole source: key, cell,
    dimensions, a moment in it.

    Built once per distinct count and run per chunk of keys: a zone's cell expression spans
    every year a store may hold.
    """
    raw = rollup_raws(catalog, rollup)[position]
    moment = column(catalog.dimensions[catalog.sources[rollup.source].time_dimension].column)
    cell, _ = cell_of(moment, rollup, dialect, (None, None))
    key = column(raw.column)
    dimensions = [
        column(catalog.dimensions[name].column).label(f"dimension_{name}")
        for name in rollup.dimensions
    ]
    # The cell's key is computed in a subquery and grouped by as a column: PostgreSQL would
    # not see an expression with bound parameters in the select list as the one grouped by.
    rows = (
        sa.select(key.label("key"), cell.label("cell"), *dimensions, moment.label("moment"))
        .select_from(joined_source(catalog.sources[rollup.source]))
        .where(key.in_(sa.bindparam("keys", expanding=True)), *_counted(raw))
        .subquery("key_rows")
    )
    names = ["key", "cell", *(f"dimension_{name}" for name in rollup.dimensions)]
    return (
        sa.select(
            *(rows.c[name] for name in names),
            sa.func.min(rows.c.moment, type_=UTCDateTime).label("bucket"),
        )
        .group_by(*(rows.c[name] for name in names))
        .order_by(rows.c.key)
    )


def _signature(cells: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """A key's set digest from its cells (cell key and dimensions), and the cells in order."""
    described = sorted(
        ((repr((str(row.cell), *row[2:-1])), row) for row in cells), key=itemgetter(0)
    )
    digest = hashlib.sha256(repr(tuple(text for text, _ in described)).encode()).hexdigest()
    return digest[:32], tuple(row for _, row in described)


async def refresh_key_sets(
    connection: AsyncConnection,
    catalog: AnalyticsCatalog,
    rollup: RollupDefinition,
    partitions: Sequence[str],
    span: tuple[Any, Any],
) -> None:
    """Brings the key sets up to date for the keys a run of partitions (over ``span``) touches.

    Called in the transaction that swaps the run, after its rows are replaced.
    """
    dialect = connection.dialect.name
    raws = rollup_raws(catalog, rollup)
    sets = key_sets_table(catalog, rollup)
    dimension_names = [f"dimension_{name}" for name in rollup.dimensions]
    first, last = partitions[0], partitions[-1]
    for position in distinct_raws(catalog, rollup):
        raw = raws[position]
        cells_table = key_cells_table(catalog, rollup, position)
        touched = set(
            (await connection.execute(_touched_statement(catalog, rollup, raw, span))).scalars()
        )
        touched.update(
            (
                await connection.execute(
                    sa.select(cells_table.c["key"])
                    .where(cells_table.c.partition.between(first, last))
                    .distinct()
                )
            ).scalars()
        )
        if not touched:
            continue
        keys = sorted(touched)
        change: Counter[str] = Counter()
        for chunk in _chunks(keys):
            old = await connection.execute(
                sa.select(cells_table.c["key"], cells_table.c.key_set)
                .where(cells_table.c["key"].in_(chunk))
                .distinct()
            )
            change.subtract(key_set for _key, key_set in old)
        cells_of_set: dict[str, tuple[Any, ...]] = {}
        stored: list[dict[str, Any]] = []
        read_cells = _cells_statement(catalog, rollup, position, dialect)
        for chunk in _chunks(keys):
            found = await connection.execute(read_cells, {"keys": list(chunk)})
            for key, rows in itertools.groupby(found, key=lambda row: row.key):
                cells = list(rows)
                if len(cells) < 2:
                    continue
                key_set, ordered = _signature(cells)
                change[key_set] += 1
                cells_of_set.setdefault(key_set, ordered)
                held = {partition_of(row.bucket, rollup.partition, rollup.zone) for row in cells}
                stored.extend(
                    {"key": key, "partition": partition, "key_set": key_set}
                    for partition in sorted(held)
                )
            await connection.execute(sa.delete(cells_table).where(cells_table.c["key"].in_(chunk)))
        if stored:
            await connection.execute(sa.insert(cells_table), stored)
        moved = sorted(key_set for key_set, difference in change.items() if difference)
        records: list[dict[str, Any]] = []
        for chunk in _chunks(moved):
            in_sets = sa.and_(sets.c.raw == position, sets.c.key_set.in_(chunk))
            kept: dict[str, list[Any]] = {}
            for row in await connection.execute(sa.select(sets).where(in_sets)):
                kept.setdefault(row.key_set, []).append(row)
            await connection.execute(sa.delete(sets).where(in_sets))
            for key_set in chunk:
                rows_before = kept.get(key_set, [])
                count = (rows_before[0]._mapping["keys"] if rows_before else 0) + change[key_set]
                if count <= 0:
                    continue
                records.extend(
                    {
                        "raw": position,
                        "key_set": key_set,
                        "bucket": row.bucket,
                        **{name: row._mapping[name] for name in dimension_names},
                        "keys": count,
                    }
                    for row in (rows_before or cells_of_set[key_set])
                )
        if records:
            await connection.execute(sa.insert(sets), records)


def digest_layout(catalog: AnalyticsCatalog, rollup: RollupDefinition) -> str:
    """Part of a rollup's definition digest: how its key sets are kept (a change rebuilds)."""
    return "key cells by partition" if distinct_raws(catalog, rollup) else ""
