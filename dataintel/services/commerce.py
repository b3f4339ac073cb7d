"""The demo business's core entities: customers, products, orders with items, events."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from dataintel.services.pagination import (
    Keyset,
    Page,
    PageRead,
    PageRequest,
    keyset_bound_conditions,
    keyset_conditions,
    keyset_order,
    keyset_order_of,
    keyset_parameters,
    page_from_rows,
)
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, fetch_all, fetch_scalar
from dataintel.store.prepared import PreparedRead, fetch_prepared
from dataintel.store.rows import AnyRow, columns_of, record_from

# Records are frozen dataclasses: their types key the statement caches below.
R = TypeVar("R", bound=Hashable)


@dataclass(frozen=True, slots=True, weakref_slot=True)
class CustomerRecord:
    id: int
    code: str
    email: str
    name: str
    region: str
    country: str
    tier: str
    acquisition_channel: str
    signed_up_at: datetime


@dataclass(frozen=True, slots=True, weakref_slot=True)
class ProductRecord:
    id: int
    sku: str
    name: str
    category: str
    price_cents: int


@dataclass(frozen=True, slots=True, weakref_slot=True)
class OrderRecord:
    id: int
    customer_id: int
    status: str
    channel: str
    placed_at: datetime
    total_cents: int
    currency: str


@dataclass(frozen=True, slots=True, weakref_slot=True)
class OrderItemRecord:
    id: int
    order_id: int
    product_id: int
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True, slots=True, weakref_slot=True)
class EventRecord:
    id: int
    customer_id: int | None
    session_id: str
    type: str
    channel: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class OrderFilter:
    """Orders matching every given condition; None means no condition."""

    statuses: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    customer_ids: tuple[int, ...] | None = None
    placed_from: datetime | None = None
    placed_before: datetime | None = None
    min_total_cents: int | None = None
    max_total_cents: int | None = None


@dataclass(frozen=True, slots=True)
class CustomerFilter:
    regions: tuple[str, ...] | None = None
    tiers: tuple[str, ...] | None = None
    acquisition_channels: tuple[str, ...] | None = None
    signed_up_from: datetime | None = None
    signed_up_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProductFilter:
    categories: tuple[str, ...] | None = None
    min_price_cents: int | None = None
    max_price_cents: int | None = None


@dataclass(frozen=True, slots=True)
class EventFilter:
    types: tuple[str, ...] | None = None
    customer_ids: tuple[int, ...] | None = None
    occurred_from: datetime | None = None
    occurred_before: datetime | None = None


ORDER_SORT = ("placed_at", "id")
EVENT_SORT = ("occurred_at", "id")
ID_SORT = ("id",)


def order_keyset(order: OrderRecord) -> Keyset:
    """The position of an order in the orders' sort order (newest first)."""
    return (order.placed_at, order.id)


def event_keyset(event: EventRecord) -> Keyset:
    """The position of an event in the events' sort order (newest first)."""
    return (event.occurred_at, event.id)


def id_keyset(record: CustomerRecord | ProductRecord) -> Keyset:
    """The position of a customer or product (by id, ascending)."""
    return (record.id,)


class CommerceService(Protocol):
    """Reads of the core entities, by key in batches and as filtered pages."""

    async def customers_by_id(self, ids: Sequence[int]) -> Mapping[int, CustomerRecord]: ...

    async def products_by_id(self, ids: Sequence[int]) -> Mapping[int, ProductRecord]: ...

    async def orders_by_id(self, ids: Sequence[int]) -> Mapping[int, OrderRecord]: ...

    async def order_items_by_id(self, ids: Sequence[int]) -> Mapping[int, OrderItemRecord]: ...

    async def events_by_id(self, ids: Sequence[int]) -> Mapping[int, EventRecord]: ...

    async def items_by_order(
        self, order_ids: Sequence[int]
    ) -> Mapping[int, Sequence[OrderItemRecord]]: ...

    async def orders(self, where: OrderFilter, page: PageRequest) -> Page[OrderRecord]: ...

    async def orders_by_customer(
        self, customer_ids: Sequence[int], where: OrderFilter, page: PageRequest
    ) -> Mapping[int, Page[OrderRecord]]: ...

    async def count_orders(self, where: OrderFilter) -> int: ...

    async def count_orders_by_customer(
        self, customer_ids: Sequence[int], where: OrderFilter
    ) -> Mapping[int, int]: ...

    async def customers(self, where: CustomerFilter, page: PageRequest) -> Page[CustomerRecord]: ...

    async def count_customers(self, where: CustomerFilter) -> int: ...

    async def products(self, where: ProductFilter, page: PageRequest) -> Page[ProductRecord]: ...

    async def count_products(self, where: ProductFilter) -> int: ...

    async def events(self, where: EventFilter, page: PageRequest) -> Page[EventRecord]: ...

    async def count_events(self, where: EventFilter) -> int: ...


# A condition of a filter: a column, a comparison, and the value it is compared with. The
# statement of a page is built once per set of (column, comparison), its values bound at
# each read (see _page_statement); other statements make clauses of them directly.
Condition = tuple[sa.Column[Any], str, Any]


def _in(column: sa.Column[Any], values: tuple[Any, ...] | None) -> list[Condition]:
    return [] if values is None else [(column, "in", values)]


def _range(column: sa.Column[Any], low: Any, high: Any, *, inclusive: bool) -> list[Condition]:
    conditions: list[Condition] = []
    if low is not None:
        conditions.append((column, ">=", low))
    if high is not None:
        conditions.append((column, "<=" if inclusive else "<", high))
    return conditions


def _clause(column: sa.Column[Any], comparison: str, value: Any) -> sa.ColumnElement[bool]:
    clause: sa.ColumnElement[bool]
    if comparison == "in":
        clause = column.in_(value)
    elif comparison == ">=":
        clause = column >= value
    else:
        clause = column <= value if comparison == "<=" else column < value
    return clause


def _clauses(conditions: list[Condition]) -> list[sa.ColumnElement[bool]]:
    return [_clause(column, comparison, value) for column, comparison, value in conditions]


@functools.lru_cache(maxsize=512)
def _page_statement(
    table: sa.Table,
    record_type: type[Any],
    shape: tuple[tuple[sa.Column[Any], str], ...],
    sort: tuple[str, ...],
    descending: bool,
    read: PageRead,
) -> PreparedRead:
    # Building a select and computing its cache key cost more than SQLite's read of a page:
    # a page's statement is built once per shape (and compiled once), its values are bind
    # parameters.
    return PreparedRead(_build_page_statement(table, record_type, shape, sort, descending, read))


def _build_page_statement(
    table: sa.Table,
    record_type: type[Any],
    shape: tuple[tuple[sa.Column[Any], str], ...],
    sort: tuple[str, ...],
    descending: bool,
    read: PageRead,
) -> sa.Select[Any]:
    keys = _keys(table, sort)
    conditions = [
        _clause(
            column,
            comparison,
            sa.bindparam(f"c{index}", type_=column.type, expanding=comparison == "in"),
        )
        for index, (column, comparison) in enumerate(shape)
    ]
    return (
        sa.select(*columns_of(table, record_type))
        .where(*conditions, *keyset_bound_conditions(keys, descending, read))
        .order_by(*keyset_order_of(keys, descending, read))
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


def _order_conditions(where: OrderFilter) -> list[Condition]:
    orders = tables.orders.c
    return [
        *_in(orders.status, where.statuses),
        *_in(orders.channel, where.channels),
        *_in(orders.customer_id, where.customer_ids),
        *_range(orders.placed_at, where.placed_from, where.placed_before, inclusive=False),
        *_range(orders.total_cents, where.min_total_cents, where.max_total_cents, inclusive=True),
    ]


def _customer_conditions(where: CustomerFilter) -> list[Condition]:
    customers = tables.customers.c
    return [
        *_in(customers.region, where.regions),
        *_in(customers.tier, where.tiers),
        *_in(customers.acquisition_channel, where.acquisition_channels),
        *_range(
            customers.signed_up_at, where.signed_up_from, where.signed_up_before, inclusive=False
        ),
    ]


def _product_conditions(where: ProductFilter) -> list[Condition]:
    products = tables.products.c
    return [
        *_in(products.category, where.categories),
        *_range(products.price_cents, where.min_price_cents, where.max_price_cents, inclusive=True),
    ]


def _event_conditions(where: EventFilter) -> list[Condition]:
    events = tables.events.c
    return [
        *_in(events.type, where.types),
        *_in(events.customer_id, where.customer_ids),
        *_range(events.occurred_at, where.occurred_from, where.occurred_before, inclusive=False),
    ]


def _keys(table: sa.Table, sort: tuple[str, ...]) -> list[sa.ColumnElement[Any]]:
    return [table.c[name] for name in sort]


@functools.cache
def _by_id_statement(table: sa.Table, record_type: type[Any]) -> PreparedRead:
    # Built once per table, its ids a bind parameter: building the statement and computing
    # its cache key cost more than SQLite's read of the rows.
    ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
    return PreparedRead(sa.select(*columns_of(table, record_type)).where(table.c.id.in_(ids)))


_ITEMS_BY_ORDER = PreparedRead(
    sa.select(*columns_of(tables.order_items, OrderItemRecord))
    .where(tables.order_items.c.order_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(tables.order_items.c.order_id, tables.order_items.c.id)
)


class SqlCommerceService:
    """CommerceService over the SQL store; every method is one statement."""

    def __init__(self, engine: StoreEngine) -> None:
        self._engine = engine

    async def _rows(
        self, statement: sa.Executable, parameters: Mapping[str, Any] | None = None
    ) -> Sequence[AnyRow]:
        return await fetch_all(self._engine, statement, parameters)

    async def _prepared(
        self, read: PreparedRead, parameters: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]]:
        return await fetch_prepared(self._engine, read, parameters)

    async def _by_id(
        self, table: sa.Table, record_type: type[R], ids: Sequence[int]
    ) -> Mapping[int, R]:
        read = _by_id_statement(table, record_type)
        rows = await self._prepared(read, {"ids": sorted(set(ids))})
        # The id is every record's first field (columns_of follows the record's fields).
        return {row[0]: record_from(record_type, row) for row in rows}

    async def customers_by_id(self, ids: Sequence[int]) -> Mapping[int, CustomerRecord]:
        return await self._by_id(tables.customers, CustomerRecord, ids)

    async def products_by_id(self, ids: Sequence[int]) -> Mapping[int, ProductRecord]:
        return await self._by_id(tables.products, ProductRecord, ids)

    async def orders_by_id(self, ids: Sequence[int]) -> Mapping[int, OrderRecord]:
        return await self._by_id(tables.orders, OrderRecord, ids)

    async def order_items_by_id(self, ids: Sequence[int]) -> Mapping[int, OrderItemRecord]:
        return await self._by_id(tables.order_items, OrderItemRecord, ids)

    async def events_by_id(self, ids: Sequence[int]) -> Mapping[int, EventRecord]:
        return await self._by_id(tables.events, EventRecord, ids)

    async def items_by_order(
        self, order_ids: Sequence[int]
    ) -> Mapping[int, Sequence[OrderItemRecord]]:
        grouped: defaultdict[int, list[OrderItemRecord]] = defaultdict(list)
        for row in await self._prepared(_ITEMS_BY_ORDER, {"ids": sorted(set(order_ids))}):
            item = record_from(OrderItemRecord, row)
            grouped[item.order_id].append(item)
        return grouped

    async def _page(
        self,
        table: sa.Table,
        record_type: type[R],
        conditions: list[Condition],
        sort: tuple[str, ...],
        descending: bool,
        page: PageRequest,
    ) -> Page[R]:
        shape = tuple((column, comparison) for column, comparison, _ in conditions)
        statement = _page_statement(table, record_type, shape, sort, descending, PageRead.of(page))
        parameters = keyset_parameters(len(sort), page)
        for index, (_, comparison, value) in enumerate(conditions):
            parameters[f"c{index}"] = list(value) if comparison == "in" else value
        rows = await self._prepared(statement, parameters)
        return page_from_rows([record_from(record_type, row) for row in rows], page)

    async def _count(self, table: sa.Table, conditions: list[Condition]) -> int:
        statement = sa.select(sa.func.count()).select_from(table).where(*_clauses(conditions))
        return int(await fetch_scalar(self._engine, statement))

    async def orders(self, where: OrderFilter, page: PageRequest) -> Page[OrderRecord]:
        conditions = _order_conditions(where)
        return await self._page(tables.orders, OrderRecord, conditions, ORDER_SORT, True, page)

    async def orders_by_customer(
        self, customer_ids: Sequence[int], where: OrderFilter, page: PageRequest
    ) -> Mapping[int, Page[OrderRecord]]:
        orders = tables.orders
        keys = _keys(orders, ORDER_SORT)
        # One statement for every customer: number each customer's orders in the order they
        # are read (from the end for `last`), keep as many as the page needs.
        position = (
            sa.func.row_number()
            .over(partition_by=orders.c.customer_id, order_by=keyset_order(keys, True, page))
            .label("position")
        )
        numbered = (
            sa.select(*columns_of(orders, OrderRecord), position)
            .where(
                orders.c.customer_id.in_(set(customer_ids)),
                *_clauses(_order_conditions(where)),
                *keyset_conditions(keys, True, page),
            )
            .subquery()
        )
        statement = (
            sa.select(*(numbered.c[field.name] for field in fields(OrderRecord)))
            .where(numbered.c.position <= page.limit)
            .order_by(numbered.c.customer_id, numbered.c.position)
        )
        grouped: defaultdict[int, list[OrderRecord]] = defaultdict(list)
        for row in await self._rows(statement):
            grouped[row.customer_id].append(record_from(OrderRecord, row))
        return {
            customer_id: page_from_rows(grouped[customer_id], page) for customer_id in customer_ids
        }

    async def count_orders(self, where: OrderFilter) -> int:
        return await self._count(tables.orders, _order_conditions(where))

    async def count_orders_by_customer(
        self, customer_ids: Sequence[int], where: OrderFilter
    ) -> Mapping[int, int]:
        orders = tables.orders
        statement = (
            sa.select(orders.c.customer_id, sa.func.count())
            .where(orders.c.customer_id.in_(set(customer_ids)), *_clauses(_order_conditions(where)))
            .group_by(orders.c.customer_id)
        )
        counts = {row[0]: int(row[1]) for row in await self._rows(statement)}
        return {customer_id: counts.get(customer_id, 0) for customer_id in customer_ids}

    async def customers(self, where: CustomerFilter, page: PageRequest) -> Page[CustomerRecord]:
        conditions = _customer_conditions(where)
        return await self._page(tables.customers, CustomerRecord, conditions, ID_SORT, False, page)

    async def count_customers(self, where: CustomerFilter) -> int:
        return await self._count(tables.customers, _customer_conditions(where))

    async def products(self, where: ProductFilter, page: PageRequest) -> Page[ProductRecord]:
        conditions = _product_conditions(where)
        return await self._page(tables.products, ProductRecord, conditions, ID_SORT, False, page)

    async def count_products(self, where: ProductFilter) -> int:
        return await self._count(tables.products, _product_conditions(where))

    async def events(self, where: EventFilter, page: PageRequest) -> Page[EventRecord]:
        conditions = _event_conditions(where)
        return await self._page(tables.events, EventRecord, conditions, EVENT_SORT, True, page)

    async def count_events(self, where: EventFilter) -> int:
        return await self._count(tables.events, _event_conditions(where))
