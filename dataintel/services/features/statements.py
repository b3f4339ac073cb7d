"""The SQL that computes a feature view: one statement, every aggregate, every entity.

Aggregates over the same rows (source, window, filters) share one grouped subquery; a
most-frequent value gets its own ranked subquery; all are left-joined to the entity table,
so an entity without rows still gets a row (and its counts become zero later).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dataintel.services.features.records import Aggregation, FeatureDefinition, FeatureView
from dataintel.services.features.sources import (
    AggregateSource,
    aggregate_sources,
    entity_tables,
)


@dataclass(frozen=True, slots=True)
class ViewColumn:
    """One feature's place in a view's statement and how its raw result becomes a value."""

    label: str
    feature: FeatureDefinition


def _conditions(
    source: AggregateSource, aggregation: Aggregation, as_of: datetime
) -> list[sa.ColumnElement[bool]]:
    conditions = [source.key.is_not(None), source.time <= as_of]
    if aggregation.window is not None:
        conditions.append(source.time > as_of - aggregation.window)
    conditions += [source.columns[name][0].in_(values) for name, values in aggregation.where]
    return conditions


def _aggregate(source: AggregateSource, aggregation: Aggregation) -> sa.ColumnElement[Any]:
    if aggregation.function == "count":
        return sa.func.count()
    if aggregation.function == "days_since_latest":
        return sa.func.max(source.time)
    assert aggregation.column is not None
    column = source.columns[aggregation.column][0]
    match aggregation.function:
        case "count_distinct":
            return sa.func.count(sa.distinct(column))
        case "sum":
            return sa.func.sum(column)
        case "average":
            return sa.func.avg(column)
        case "minimum":
            return sa.func.min(column)
        case "maximum":
            return sa.func.max(column)
    raise AssertionError(aggregation.function)


def _most_frequent(
    source: AggregateSource, aggregation: Aggregation, as_of: datetime, label: str
) -> sa.Subquery:
    assert aggregation.column is not None
    value = source.columns[aggregation.column][0]
    tally = (
        sa.func.sum(source.columns[aggregation.weight][0])
        if aggregation.weight
        else sa.func.count()
    )
    tallies = (
        sa.select(source.key.label("entity_id"), value.label("value"), tally.label("tally"))
        .select_from(source.rows)
        .where(*_conditions(source, aggregation, as_of), value.is_not(None))
        .group_by(source.key, value)
        .subquery()
    )
    # Ties go to the smallest value so that both dialects and reruns agree.
    rank = sa.func.row_number().over(
        partition_by=tallies.c.entity_id, order_by=(tallies.c.tally.desc(), tallies.c.value.asc())
    )
    ranked = sa.select(tallies.c.entity_id, tallies.c.value, rank.label("position")).subquery()
    return (
        sa.select(ranked.c.entity_id, ranked.c.value.label(label))
        .where(ranked.c.position == 1)
        .subquery()
    )


def view_statement(view: FeatureView, as_of: datetime) -> tuple[sa.Select[Any], list[ViewColumn]]:
    """One statement computing every aggregate of a view for every entity, left-joined."""
    entity = entity_tables()[view.entity_type]
    sources = aggregate_sources()
    joined: sa.FromClause = entity
    selected: list[sa.ColumnElement[Any]] = []
    columns: list[ViewColumn] = []
    # Aggregates over the same rows share one grouped subquery.
    groups: dict[tuple[Any, ...], list[tuple[str, FeatureDefinition]]] = {}
    for index, feature in enumerate(view.features):
        aggregation = feature.aggregation
        if aggregation is None:
            continue
        label = f"feature_{index}"
        columns.append(ViewColumn(label, feature))
        source = sources[(view.entity_type, aggregation.source)]
        if aggregation.function == "most_frequent":
            best = _most_frequent(source, aggregation, as_of, label)
            joined = joined.outerjoin(best, best.c.entity_id == entity.c.id)
            selected.append(best.c[label])
            continue
        group = (aggregation.source, aggregation.window, aggregation.where)
        groups.setdefault(group, []).append((label, feature))
    for members in groups.values():
        first = members[0][1].aggregation
        assert first is not None
        source = sources[(view.entity_type, first.source)]
        grouped = (
            sa.select(
                source.key.label("entity_id"),
                *(
                    _aggregate(source, feature.aggregation).label(label)
                    for label, feature in members
                    if feature.aggregation is not None
                ),
            )
            .select_from(source.rows)
            .where(*_conditions(source, first, as_of))
            .group_by(source.key)
            .subquery()
        )
        joined = joined.outerjoin(grouped, grouped.c.entity_id == entity.c.id)
        selected += [grouped.c[label] for label, _ in members]
    statement = (
        sa.select(entity.c.id.label("entity_id"), *selected)
        .select_from(joined)
        .order_by(entity.c.id)
    )
    return statement, columns
