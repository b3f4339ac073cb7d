"""Loaders of the core entities and their relations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dataintel.loaders.batching import GroupedLoader, MappingLoader
from dataintel.services.commerce import (
    CommerceService,
    CustomerRecord,
    EventRecord,
    OrderFilter,
    OrderItemRecord,
    OrderRecord,
    ProductRecord,
)
from dataintel.services.pagination import Page, PageRequest

OrdersQuery = tuple[OrderFilter, PageRequest]


def _none() -> None:
    return None


def _no_items() -> Sequence[OrderItemRecord]:
    return ()


def _zero() -> int:
    return 0


def _empty_page() -> Page[OrderRecord]:
    return Page((), False)


@dataclass(frozen=True, slots=True)
class CommerceLoaders:
    """By-key reads of customers, products, orders, order items, events and a customer's orders."""

    customer: MappingLoader[int, CustomerRecord | None]
    product: MappingLoader[int, ProductRecord | None]
    order: MappingLoader[int, OrderRecord | None]
    order_item: MappingLoader[int, OrderItemRecord | None]
    event: MappingLoader[int, EventRecord | None]
    items_of_order: MappingLoader[int, Sequence[OrderItemRecord]]
    orders_of_customer: GroupedLoader[int, OrdersQuery, Page[OrderRecord]]
    order_count_of_customer: GroupedLoader[int, OrderFilter, int]


def create_commerce_loaders(
    service: CommerceService, *, max_batch_size: int, batch: bool
) -> CommerceLoaders:
    """Fresh loaders for one request."""

    async def orders_of_customers(
        customer_ids: Sequence[int], query: OrdersQuery
    ) -> Mapping[int, Page[OrderRecord]]:
        where, page = query
        return await service.orders_by_customer(customer_ids, where, page)

    size = max_batch_size
    return CommerceLoaders(
        customer=MappingLoader(service.customers_by_id, _none, max_batch_size=size, batch=batch),
        product=MappingLoader(service.products_by_id, _none, max_batch_size=size, batch=batch),
        order=MappingLoader(service.orders_by_id, _none, max_batch_size=size, batch=batch),
        order_item=MappingLoader(
            service.order_items_by_id, _none, max_batch_size=size, batch=batch
        ),
        event=MappingLoader(service.events_by_id, _none, max_batch_size=size, batch=batch),
        items_of_order=MappingLoader(
            service.items_by_order, _no_items, max_batch_size=size, batch=batch
        ),
        orders_of_customer=GroupedLoader(
            orders_of_customers, _empty_page, max_batch_size=size, batch=batch
        ),
        order_count_of_customer=GroupedLoader(
            service.count_orders_by_customer, _zero, max_batch_size=size, batch=batch
        ),
    )
