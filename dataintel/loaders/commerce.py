"""Loaders of the core entities and their relations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

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
V = TypeVar("V")


def _none() -> None:
    return None


def _no_items() -> Sequence[OrderItemRecord]:
    return ()


def _zero() -> int:
    return 0


def _empty_page() -> Page[OrderRecord]:
    return Page((), False)


class CommerceLoaders:
    """By-key reads of customers, products, orders, order items, events and a customer's orders.

    Each loader is made when first used: a request reads one or two of them, and making all
    eight costs more than a warm request's whole loading.
    """

    __slots__ = (
        "_batch",
        "_customer",
        "_event",
        "_items_of_order",
        "_order",
        "_order_count_of_customer",
        "_order_item",
        "_orders_of_customer",
        "_product",
        "_service",
        "_size",
    )

    def __init__(self, service: CommerceService, *, max_batch_size: int, batch: bool) -> None:
        self._service = service
        self._size = max_batch_size
        self._batch = batch
        self._customer: MappingLoader[int, CustomerRecord | None] | None = None
        self._product: MappingLoader[int, ProductRecord | None] | None = None
        self._order: MappingLoader[int, OrderRecord | None] | None = None
        self._order_item: MappingLoader[int, OrderItemRecord | None] | None = None
        self._event: MappingLoader[int, EventRecord | None] | None = None
        self._items_of_order: MappingLoader[int, Sequence[OrderItemRecord]] | None = None
        self._orders_of_customer: GroupedLoader[int, OrdersQuery, Page[OrderRecord]] | None = None
        self._order_count_of_customer: GroupedLoader[int, OrderFilter, int] | None = None

    def _by_key(
        self, fetch: Callable[[Sequence[int]], Awaitable[Mapping[int, V]]], missing: Callable[[], V]
    ) -> MappingLoader[int, V]:
        return MappingLoader(fetch, missing, max_batch_size=self._size, batch=self._batch)

    @property
    def customer(self) -> MappingLoader[int, CustomerRecord | None]:
        """Customers by id."""
        if self._customer is None:
            self._customer = self._by_key(self._service.customers_by_id, _none)
        return self._customer

    @property
    def product(self) -> MappingLoader[int, ProductRecord | None]:
        """Products by id."""
        if self._product is None:
            self._product = self._by_key(self._service.products_by_id, _none)
        return self._product

    @property
    def order(self) -> MappingLoader[int, OrderRecord | None]:
        """Orders by id."""
        if self._order is None:
            self._order = self._by_key(self._service.orders_by_id, _none)
        return self._order

    @property
    def order_item(self) -> MappingLoader[int, OrderItemRecord | None]:
        """Order items by id."""
        if self._order_item is None:
            self._order_item = self._by_key(self._service.order_items_by_id, _none)
        return self._order_item

    @property
    def event(self) -> MappingLoader[int, EventRecord | None]:
        """Events by id."""
        if self._event is None:
            self._event = self._by_key(self._service.events_by_id, _none)
        return self._event

    @property
    def items_of_order(self) -> MappingLoader[int, Sequence[OrderItemRecord]]:
        """The items of each order, by order id."""
        if self._items_of_order is None:
            self._items_of_order = self._by_key(self._service.items_by_order, _no_items)
        return self._items_of_order

    @property
    def orders_of_customer(self) -> GroupedLoader[int, OrdersQuery, Page[OrderRecord]]:
        """A page of each customer's orders, by customer id and (filter, page)."""
        if self._orders_of_customer is None:
            service = self._service

            async def orders_of_customers(
                customer_ids: Sequence[int], query: OrdersQuery
            ) -> Mapping[int, Page[OrderRecord]]:
                where, page = query
                return await service.orders_by_customer(customer_ids, where, page)

            self._orders_of_customer = GroupedLoader(
                orders_of_customers, _empty_page, max_batch_size=self._size, batch=self._batch
            )
        return self._orders_of_customer

    @property
    def order_count_of_customer(self) -> GroupedLoader[int, OrderFilter, int]:
        """How many orders each customer has, by customer id and filter."""
        if self._order_count_of_customer is None:
            self._order_count_of_customer = GroupedLoader(
                self._service.count_orders_by_customer,
                _zero,
                max_batch_size=self._size,
                batch=self._batch,
            )
        return self._order_count_of_customer


def create_commerce_loaders(
    service: CommerceService, *, max_batch_size: int, batch: bool
) -> CommerceLoaders:
    """Fresh loaders for one request."""
    return CommerceLoaders(service, max_batch_size=max_batch_size, batch=batch)
