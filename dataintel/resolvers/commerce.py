"""Resolvers of the core entities: arguments to loaders and services, records back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from dataintel.errors import BadUserInputError
from dataintel.loaders import Loaders
from dataintel.loaders.batching import MappingLoader
from dataintel.resolvers.freshness import load, report_from, watched
from dataintel.resolvers.global_ids import object_key
from dataintel.resolvers.info import Info
from dataintel.services.commerce import (
    CustomerFilter,
    CustomerRecord,
    EventFilter,
    EventRecord,
    OrderFilter,
    OrderItemRecord,
    OrderRecord,
    ProductFilter,
    ProductRecord,
)
from dataintel.services.pagination import DEFAULT_PAGE, Page, PageRequest, decode_cursor


def page_request(
    info: Info,
    first: int | None,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> PageRequest:
    """The page asked for; ``first`` or ``last`` beyond the configured maximum is BAD_USER_INPUT."""
    maximum = info.context.max_page_size
    for name, size in (("first", first), ("last", last)):
        if size is not None and (size < 0 or size > maximum):
            raise BadUserInputError(
                f"'{name}' must be between 0 and {maximum}; it was {size}.",
                details={"argument": name, "maximum": maximum},
            )
    if first is None and last is None:
        first = min(DEFAULT_PAGE, maximum)
    return PageRequest(
        first,
        decode_cursor(after) if after else None,
        last,
        decode_cursor(before) if before else None,
    )


def entity_id(raw: str, type_name: str) -> int:
    """The key inside an ID argument: a global id of the type, or the plain key."""
    return object_key(raw, type_name, type_name.lower())


def customers_by_id(loaders: Loaders) -> MappingLoader[int, CustomerRecord | None]:
    """The request's loader of customers by id (for KeyedLoad fields)."""
    return loaders.commerce.customer


def products_by_id(loaders: Loaders) -> MappingLoader[int, ProductRecord | None]:
    """The request's loader of products by id."""
    return loaders.commerce.product


def items_by_order(loaders: Loaders) -> MappingLoader[int, Sequence[OrderItemRecord]]:
    """The request's loader of an order's items, by order id."""
    return loaders.commerce.items_of_order


async def customer(info: Info, customer_id: int) -> CustomerRecord | None:
    """One customer by id, batched with every other customer read of the request."""
    return await load(info, info.context.loaders.commerce.customer, customer_id)


async def product(info: Info, product_id: int) -> ProductRecord | None:
    """One product by id, batched."""
    return await load(info, info.context.loaders.commerce.product, product_id)


async def order(info: Info, order_id: int) -> OrderRecord | None:
    """One order by id, batched."""
    return await load(info, info.context.loaders.commerce.order, order_id)


async def orders_of_customer(
    info: Info, customer_id: int, page: PageRequest, where: OrderFilter
) -> tuple[Page[OrderRecord], Callable[[], Awaitable[int]]]:
    """A page of one customer's orders, batched across customers, with a batched count."""
    loaders = info.context.loaders.commerce
    records = await load(info, loaders.orders_of_customer, (customer_id, (where, page)))

    async def count() -> int:
        return await report_from(loaders.order_count_of_customer, (customer_id, where))

    return records, count


async def orders(
    info: Info, page: PageRequest, where: OrderFilter
) -> tuple[Page[OrderRecord], Callable[[], Awaitable[int]]]:
    """A page of orders, newest first."""
    service = info.context.services.commerce
    return await watched(info, service.orders(where, page)), lambda: service.count_orders(where)


async def customers(
    info: Info, page: PageRequest, where: CustomerFilter
) -> tuple[Page[CustomerRecord], Callable[[], Awaitable[int]]]:
    """A page of customers by id."""
    service = info.context.services.commerce
    found = await watched(info, service.customers(where, page))
    return found, lambda: service.count_customers(where)


async def products(
    info: Info, page: PageRequest, where: ProductFilter
) -> tuple[Page[ProductRecord], Callable[[], Awaitable[int]]]:
    """A page of products by id."""
    service = info.context.services.commerce
    found = await watched(info, service.products(where, page))
    return found, lambda: service.count_products(where)


async def events(
    info: Info, page: PageRequest, where: EventFilter
) -> tuple[Page[EventRecord], Callable[[], Awaitable[int]]]:
    """A page of events, newest first."""
    service = info.context.services.commerce
    return await watched(info, service.events(where, page)), lambda: service.count_events(where)
