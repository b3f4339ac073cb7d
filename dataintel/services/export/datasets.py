"""The exportable datasets: their columns, value kinds, source and order.

Values keep their exact kind through every format: ids and money (cents) are 64-bit
integers, decimals are strings in CSV and NDJSON (a decimal type in Parquet), moments are
UTC ISO 8601. A dataset is ``personal`` when its rows link to a person (directly or by a
customer id): exporting it needs the data_engineer or admin role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from dataintel.store import tables

ValueKind = Literal["int", "cents", "text", "timestamp", "float", "decimal"]


@dataclass(frozen=True, slots=True)
class ExportColumn:
    """One column of a dataset: its name in files, its kind and its SQL expression."""

    name: str
    kind: ValueKind
    expression: sa.ColumnElement[Any]


@dataclass(frozen=True, slots=True)
class ExportDataset:
    """A dataset rows are streamed from, in a stable order."""

    name: str
    description: str
    personal: bool
    columns: tuple[ExportColumn, ...]
    source: sa.FromClause
    order_by: tuple[sa.ColumnElement[Any], ...]
    subject_table: sa.Table
    """The table whose rows stand for the dataset's: erased subjects are left out by its
    privacy-map link (orders with items: the orders, so an order without items stays one)."""

    def column(self, name: str) -> ExportColumn | None:
        """The column of that name, if any."""
        return next((column for column in self.columns if column.name == name), None)


def _table_columns(table: sa.Table, kinds: Mapping[str, ValueKind]) -> tuple[ExportColumn, ...]:
    return tuple(ExportColumn(name, kind, table.c[name]) for name, kind in kinds.items())


_orders, _items = tables.orders, tables.order_items

ANALYTICS = "analytics"
"""The dataset of an analytics query's result rows (its columns come from the query)."""

DATASETS: Mapping[str, ExportDataset] = {
    dataset.name: dataset
    for dataset in (
        ExportDataset(
            name="orders",
            description="Orders with their items: one row per item (an order without items:"
            " one row with empty item columns).",
            personal=True,
            columns=(
                ExportColumn("order_id", "int", _orders.c.id),
                ExportColumn("customer_id", "int", _orders.c.customer_id),
                ExportColumn("status", "text", _orders.c.status),
                ExportColumn("channel", "text", _orders.c.channel),
                ExportColumn("placed_at", "timestamp", _orders.c.placed_at),
                ExportColumn("currency", "text", _orders.c.currency),
                ExportColumn("total_cents", "cents", _orders.c.total_cents),
                ExportColumn("item_id", "int", _items.c.id),
                ExportColumn("product_id", "int", _items.c.product_id),
                ExportColumn("quantity", "int", _items.c.quantity),
                ExportColumn("unit_price_cents", "cents", _items.c.unit_price_cents),
            ),
            source=_orders.outerjoin(_items, _items.c.order_id == _orders.c.id),
            subject_table=_orders,
            order_by=(_orders.c.id, _items.c.id),
        ),
        ExportDataset(
            name="customers",
            description="Customers, with their names and emails.",
            personal=True,
            columns=_table_columns(
                tables.customers,
                {
                    "id": "int",
                    "code": "text",
                    "email": "text",
                    "name": "text",
                    "region": "text",
                    "country": "text",
                    "tier": "text",
                    "acquisition_channel": "text",
                    "signed_up_at": "timestamp",
                },
            ),
            source=tables.customers,
            subject_table=tables.customers,
            order_by=(tables.customers.c.id,),
        ),
        ExportDataset(
            name="events",
            description="Page views, sign-ups, add-to-carts and purchases.",
            personal=True,
            columns=_table_columns(
                tables.events,
                {
                    "id": "int",
                    "customer_id": "int",
                    "session_id": "text",
                    "type": "text",
                    "channel": "text",
                    "occurred_at": "timestamp",
                },
            ),
            source=tables.events,
            subject_table=tables.events,
            order_by=(tables.events.c.id,),
        ),
        ExportDataset(
            name="ledger",
            description="The finance ledger's entries (amounts in cents; no person in them).",
            personal=False,
            columns=_table_columns(
                tables.ledger_entries,
                {
                    "id": "int",
                    "entry_ref": "text",
                    "order_id": "int",
                    "amount_cents": "cents",
                    "currency": "text",
                    "booked_at": "timestamp",
                    "status": "text",
                },
            ),
            source=tables.ledger_entries,
            subject_table=tables.ledger_entries,
            order_by=(tables.ledger_entries.c.id,),
        ),
        ExportDataset(
            name="feature_values",
            description="Materialized feature values by entity (customers' are personal).",
            personal=True,
            columns=_table_columns(
                tables.feature_values,
                {
                    "entity_type": "text",
                    "entity_id": "text",
                    "feature_name": "text",
                    "value_double": "float",
                    "value_text": "text",
                    "event_timestamp": "timestamp",
                    "created_at": "timestamp",
                },
            ),
            source=tables.feature_values,
            subject_table=tables.feature_values,
            order_by=(
                tables.feature_values.c.entity_type,
                tables.feature_values.c.entity_id,
                tables.feature_values.c.feature_name,
            ),
        ),
    )
}

DATASET_NAMES: tuple[str, ...] = (*DATASETS, ANALYTICS)
