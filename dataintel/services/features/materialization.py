"""Materialization: a view computed at an as_of and written into the online table.

Every view of one run is written in one transaction (the service opens it), so a failure
part-way leaves the previous values in place. Rows go in by upsert in bounded chunks, then
the view's values of entities that no longer exist are deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.services.features.catalog import FeatureCatalog
from dataintel.services.features.records import FeatureDefinition, FeatureScalar, FeatureView
from dataintel.services.features.sources import entity_tables
from dataintel.services.features.statements import view_statement
from dataintel.services.features.values import decimal_of, stored_columns, typed_value, utc
from dataintel.store import tables

# Values per executemany call: bounds one statement's parameters whatever the store's size.
UPSERT_CHUNK = 5000


def aggregate_value(raw: Any, feature: FeatureDefinition, as_of: datetime) -> Any:
    """An aggregate's raw result as the feature's value (zero counts, days, scaling)."""
    aggregation = feature.aggregation
    assert aggregation is not None
    if raw is None:
        # No rows for the entity: counts and sums are zero, the rest has no value.
        if aggregation.function in ("count", "count_distinct", "sum"):
            return 0
        return None
    if aggregation.function == "days_since_latest":
        return (as_of - utc(raw)) // timedelta(days=1)
    if aggregation.scale is not None:
        return decimal_of(raw) * aggregation.scale
    return raw


async def latest_activity(connection: AsyncConnection) -> datetime | None:
    """The latest order or event in the store: the default as_of of a materialization."""
    orders, events = tables.orders, tables.events
    statement = sa.select(
        sa.select(sa.func.max(orders.c.placed_at)).scalar_subquery(),
        sa.select(sa.func.max(events.c.occurred_at)).scalar_subquery(),
    )
    row = (await connection.execute(statement)).one()
    moments = [utc(moment) for moment in row if moment is not None]
    return max(moments) if moments else None


async def materialize_view(
    connection: AsyncConnection,
    catalog: FeatureCatalog,
    view: FeatureView,
    as_of: datetime,
    materialized_at: datetime,
) -> int:
    """Computes ``view`` at ``as_of``, upserts its values, drops orphans; values written."""
    statement, columns = view_statement(view, as_of)
    upsert = upsert_statement(connection)
    written = 0
    # One row per entity, read whole so that no cursor stays open across the writes.
    result = (await connection.execute(statement)).all()
    chunk: list[dict[str, Any]] = []
    for row in result:
        computed: dict[str, FeatureScalar | None] = {}
        for column in columns:
            raw = aggregate_value(row._mapping[column.label], column.feature, as_of)
            computed[column.feature.name] = typed_value(raw, column.feature.value_type)
        for feature in view.features:
            if feature.formula is not None:
                evaluate = catalog.formula(view.name, feature.name)
                computed[feature.name] = typed_value(evaluate(computed), feature.value_type)
        for feature in view.features:
            value_double, value_text = stored_columns(computed[feature.name])
            chunk.append(
                {
                    "entity_type": view.entity_type,
                    "entity_id": str(row.entity_id),
                    "feature_name": feature.name,
                    "value_double": value_double,
                    "value_text": value_text,
                    "event_timestamp": as_of,
                    "created_at": materialized_at,
                }
            )
        if len(chunk) >= UPSERT_CHUNK:
            await connection.execute(upsert, chunk)
            written += len(chunk)
            chunk = []
    if chunk:
        await connection.execute(upsert, chunk)
        written += len(chunk)
    await connection.execute(orphans_statement(view))
    return written


def upsert_statement(connection: AsyncConnection) -> sa.Executable:
    """Insert-or-update of online values in the connection's dialect."""
    values = tables.feature_values
    statement: postgresql.Insert | sqlite.Insert = (
        postgresql.insert(values)
        if connection.dialect.name == "postgresql"
        else sqlite.insert(values)
    )
    return statement.on_conflict_do_update(
        index_elements=list(values.primary_key.columns),
        set_={
            name: statement.excluded[name]
            for name in ("value_double", "value_text", "event_timestamp", "created_at")
        },
    )


def orphans_statement(view: FeatureView) -> sa.Executable:
    """Deletes the view's values of entities that no longer exist (e.g. erased customers)."""
    values = tables.feature_values
    entity = entity_tables()[view.entity_type]
    # NOT IN over a subquery: both dialects hash it, where a correlated NOT EXISTS on a
    # cast id would scan the entity table once per value on SQLite.
    existing = sa.select(sa.cast(entity.c.id, sa.String))
    return sa.delete(values).where(
        values.c.entity_type == view.entity_type,
        values.c.feature_name.in_([feature.name for feature in view.features]),
        values.c.entity_id.not_in(existing),
    )
