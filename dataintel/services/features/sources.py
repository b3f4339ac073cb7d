"""Where aggregates read from: the store's rows per (entity type, source name), and entities.

A feature view's aggregate names a source; the catalog checks the name and the columns
against this map when it loads, and the statements read through it when they compute.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from dataintel.store import tables

ColumnKind = Literal["number", "text"]


@dataclass(frozen=True, slots=True)
class AggregateSource:
    """Rows an aggregate reads: the entity key, the time that as_of cuts at, named columns."""

    rows: sa.FromClause
    key: sa.ColumnElement[Any]
    time: sa.ColumnElement[Any]
    columns: Mapping[str, tuple[sa.ColumnElement[Any], ColumnKind]]


def _order_columns() -> dict[str, tuple[sa.ColumnElement[Any], ColumnKind]]:
    orders = tables.orders.c
    return {
        "id": (orders.id, "number"),
        "total_cents": (orders.total_cents, "number"),
        "status": (orders.status, "text"),
        "channel": (orders.channel, "text"),
        "currency": (orders.currency, "text"),
    }


def _item_columns() -> dict[str, tuple[sa.ColumnElement[Any], ColumnKind]]:
    items, orders, products = tables.order_items.c, tables.orders.c, tables.products.c
    return {
        "order_id": (items.order_id, "number"),
        "product_id": (items.product_id, "number"),
        "customer_id": (orders.customer_id, "number"),
        "quantity": (items.quantity, "number"),
        "unit_price_cents": (items.unit_price_cents, "number"),
        "line_total_cents": (items.quantity * items.unit_price_cents, "number"),
        "category": (products.category, "text"),
        "status": (orders.status, "text"),
        "channel": (orders.channel, "text"),
    }


def _items_joined() -> sa.FromClause:
    items, orders, products = tables.order_items, tables.orders, tables.products
    return items.join(orders, items.c.order_id == orders.c.id).join(
        products, items.c.product_id == products.c.id
    )


@functools.cache
def aggregate_sources() -> dict[tuple[str, str], AggregateSource]:
    """The sources by (entity type, source name); built once, on first use."""
    orders, events, items = tables.orders, tables.events, tables.order_items
    return {
        ("customer", "orders"): AggregateSource(
            orders, orders.c.customer_id, orders.c.placed_at, _order_columns()
        ),
        ("customer", "order_items"): AggregateSource(
            _items_joined(), orders.c.customer_id, orders.c.placed_at, _item_columns()
        ),
        ("customer", "events"): AggregateSource(
            events,
            events.c.customer_id,
            events.c.occurred_at,
            {
                "id": (events.c.id, "number"),
                "session_id": (events.c.session_id, "text"),
                "type": (events.c.type, "text"),
                "channel": (events.c.channel, "text"),
            },
        ),
        ("product", "order_items"): AggregateSource(
            _items_joined(), items.c.product_id, orders.c.placed_at, _item_columns()
        ),
    }


@functools.cache
def entity_tables() -> dict[str, sa.Table]:
    """The table of each entity type that has features."""
    return {"customer": tables.customers, "product": tables.products}
