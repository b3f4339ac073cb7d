"""Compiling a plan: one statement for the rows, one for the totals.

Each source's rows are aggregated on their own and merged on the bucket and dimension
values; measure filters become conditions on the groups (HAVING), and the totals aggregate
only the rows of the groups kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import sqlalchemy as sa

from dataintel.services.analytics.catalog import TIME_MEMBER
from dataintel.services.analytics.key_sets import key_sets_table
from dataintel.services.analytics.planner import Additive, Condition, Plan, Raw, Value
from dataintel.services.analytics.rollup_cells import column, joined_source, rollup_raws
from dataintel.services.analytics.rollups import rollup_table
from dataintel.services.time_buckets import bucket_key


def _bucket(plan: Plan, moment: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    periods = plan.clock.periods_between(plan.start, plan.end)
    return bucket_key(moment, plan.granularity or "day", periods, dialect)


def _compare(
    expression: sa.ColumnElement[Any],
    condition: Condition,
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


def _input(raw: Raw) -> sa.ColumnElement[Any]:
    value = column(raw.column)
    if not raw.where:
        return value
    condition = sa.and_(*(column(reference).in_(values) for reference, values in raw.where))
    return sa.case((condition, value))


def _aggregate(raw: Raw, value: sa.ColumnElement[Any], rolled: bool) -> sa.ColumnElement[Any]:
    if rolled:
        # A rollup holds each hour's sums and counts: they add up; a count of nothing is 0.
        total = sa.func.sum(value)
        return total if raw.function == "sum" else sa.func.coalesce(total, 0)
    if raw.function == "sum":
        return sa.func.sum(value)
    if raw.function == "count":
        return sa.func.count(value)
    return sa.func.count(sa.distinct(value))


def _source_rows(
    plan: Plan, source_name: str, dialect: str, *, keyed: bool, name: str
) -> sa.Subquery:
    if source_name in plan.rollups:
        return _rollup_rows(plan, source_name, dialect, keyed=keyed, name=name)
    source = plan.catalog.sources[source_name]
    time = plan.time_dimension or plan.catalog.dimensions[source.time_dimension]
    moment = column(time.column)
    columns: list[sa.ColumnElement[Any]] = []
    if keyed and plan.granularity:
        columns.append(_bucket(plan, moment, dialect).label("bucket"))
    if keyed:
        columns.extend(
            column(dimension.column).label(f"dimension_{index}")
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
        _compare(column(dimension.column), condition, _as_is)
        for dimension, condition in plan.dimension_filters
    )
    statement = sa.select(*columns).select_from(joined_source(source)).where(*conditions)
    return statement.subquery(name)


def _rollup_rows(
    plan: Plan, source_name: str, dialect: str, *, keyed: bool, name: str
) -> sa.Subquery:
    """The source's rows as its rollup holds them: one per cell (grain and dimension values).

    A distinct count adds up its cells' counts, less, for every key set with several cells
    in a group, its keys times (those cells - 1): rows of negative counts after the cells.
    """
    rollup = plan.rollups[source_name]
    table = rollup_table(plan.catalog, rollup)
    stored = rollup_raws(plan.catalog, rollup)
    inputs = [(index, raw) for index, raw in enumerate(plan.raws) if raw.source == source_name]

    def cells_of(scope: sa.Table) -> sa.Select[Any]:
        # A stored cell's moment buckets exactly like every raw moment of that cell would.
        moment = scope.c.bucket
        keys: list[sa.ColumnElement[Any]] = []
        if keyed and plan.granularity:
            keys.append(_bucket(plan, moment, dialect).label("bucket"))
        if keyed:
            keys.extend(
                scope.c[f"dimension_{dimension.name}"].label(f"dimension_{index}")
                for index, dimension in enumerate(plan.dimensions)
            )
        conditions: list[Any] = []
        if plan.start is not None:
            conditions.append(moment >= plan.start)
        if plan.end is not None:
            conditions.append(moment < plan.end)
        conditions.extend(
            _compare(scope.c[f"dimension_{dimension.name}"], condition, _as_is)
            for dimension, condition in plan.dimension_filters
        )
        return sa.select(*keys).where(*conditions)

    parts = [
        cells_of(table).add_columns(
            *(
                table.c[f"value_{stored.index(raw)}"].label(f"input_{index}")
                for index, raw in inputs
            )
        )
    ]
    sets = key_sets_table(plan.catalog, rollup)
    for distinct, raw in inputs:
        if raw.function != "count_distinct":
            continue
        cells = (
            cells_of(sets)
            .add_columns(sets.c.key_set, sets.c["keys"])
            .where(sets.c.raw == stored.index(raw))
            .subquery(f"{name}_sets_{distinct}")
        )
        keys = [cells.c[key] for key in plan.keys] if keyed else []
        # Each key of a set was counted once per cell of the set in the group: once is right.
        excess = sa.func.max(cells.c["keys"]) * (sa.func.count() - 1)
        parts.append(
            sa.select(
                *keys,
                *(
                    (-excess if index == distinct else sa.cast(sa.null(), sa.BigInteger())).label(
                        f"input_{index}"
                    )
                    for index, _raw in inputs
                ),
            )
            .group_by(*keys, cells.c.key_set)
            .having(sa.func.count() > 1)
        )
    if len(parts) == 1:
        return parts[0].subquery(name)
    return sa.union_all(*parts).subquery(name)


def _grouped(plan: Plan, rows_of: Mapping[str, sa.FromClause]) -> sa.Subquery:
    """Every source's aggregates by bucket and dimensions, merged on those keys."""
    branches: list[sa.Select[Any]] = []
    for source in plan.sources:
        rows = rows_of[source]
        keys = [rows.c[key] for key in plan.keys]
        values = [
            (
                _aggregate(raw, rows.c[f"input_{index}"], source in plan.rollups)
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


def _value_sql(plan: Plan, value: Value, grouped: sa.Subquery) -> sa.ColumnElement[Any]:
    def additive(part: Additive) -> sa.ColumnElement[Any]:
        raw = grouped.c[plan.label(part.raw)]
        total = sa.cast(sa.func.coalesce(raw, sa.literal_column("0")), sa.Float())
        return _scaled_sql(total, part.scale)

    if isinstance(value, Additive):
        return additive(value)
    denominator = sa.func.nullif(
        additive(value.denominator), sa.literal_column("0"), type_=sa.Float()
    )
    return _scaled_sql(additive(value.numerator) / denominator, value.scale)


def _sortable(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    # Byte order on both dialects: a PostgreSQL locale collation would ignore underscores.
    return sa.collate(column, "C") if dialect == "postgresql" else column


def _measure_conditions(plan: Plan, grouped: sa.Subquery) -> list[sa.ColumnElement[bool]]:
    return [
        _compare(_value_sql(plan, value, grouped), condition, _number)
        for value, condition in plan.measure_filters
    ]


def rows_statement(plan: Plan, dialect: str) -> sa.Select[Any]:
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


def totals_statement(plan: Plan, dialect: str) -> sa.Select[Any]:
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
                _aggregate(
                    plan.raws[index], scope.c[f"input_{index}"], source in plan.rollups
                ).label(f"value_{index}")
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
