"""Commerce reads: a page's statement is built once per shape, its values bound per read, and
the rows are those of a statement built with the values in it (on both stores)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.services import commerce
from dataintel.services.commerce import OrderFilter, SqlCommerceService
from dataintel.services.pagination import PageRead, PageRequest
from dataintel.store import tables


@pytest.fixture
async def service(store_engine: AsyncEngine) -> SqlCommerceService:
    customers = [
        {
            "id": number,
            "code": f"C{number:06d}",
            "email": f"c{number}@example.com",
            "name": f"Customer {number}",
            "region": "europe",
            "country": "FR",
            "tier": "gold",
            "acquisition_channel": "organic",
            "signed_up_at": datetime(2025, 1, 1, tzinfo=UTC),
        }
        for number in (1, 2)
    ]
    orders = [
        {
            "id": number,
            "customer_id": 1 + number % 2,
            "status": ("paid", "placed", "shipped")[number % 3],
            "channel": "web",
            "placed_at": datetime(2025, 3, 1 + number // 2, 9, tzinfo=UTC),
            "total_cents": 100 * number,
            "currency": "USD",
        }
        for number in range(1, 13)
    ]
    async with store_engine.begin() as connection:
        await connection.execute(sa.insert(tables.customers), customers)
        await connection.execute(sa.insert(tables.orders), orders)
    return SqlCommerceService(store_engine)


def test_pages_read_the_same_way_share_one_statement() -> None:
    orders = tables.orders
    shape = ((orders.c.status, "in"), (orders.c.placed_at, ">="))
    read = PageRead.of(PageRequest(first=5, after=(datetime(2025, 1, 1, tzinfo=UTC), 3)))
    same = PageRead.of(PageRequest(first=9, after=(datetime(2024, 6, 1, tzinfo=UTC), 8)))
    first = commerce._page_statement(
        orders, commerce.OrderRecord, shape, commerce.ORDER_SORT, True, read
    )
    again = commerce._page_statement(
        orders, commerce.OrderRecord, shape, commerce.ORDER_SORT, True, same
    )
    backwards = commerce._page_statement(
        orders,
        commerce.OrderRecord,
        shape,
        commerce.ORDER_SORT,
        True,
        PageRead.of(PageRequest(first=None, last=3)),
    )
    assert again is first
    assert backwards is not first


async def test_bound_values_give_the_rows_of_inline_ones(
    service: SqlCommerceService, store_engine: AsyncEngine
) -> None:
    where = OrderFilter(statuses=("paid", "placed"), min_total_cents=200, max_total_cents=1100)
    whole = await service.orders(where, PageRequest(first=50))
    orders = tables.orders.c
    inline = (
        sa.select(orders.id)
        .where(
            orders.status.in_(("paid", "placed")),
            orders.total_cents >= 200,
            orders.total_cents <= 1100,
        )
        .order_by(orders.placed_at.desc(), orders.id.desc())
    )
    async with store_engine.connect() as connection:
        expected = (await connection.execute(inline)).scalars().all()
    assert [order.id for order in whole.items] == expected
    assert not whole.has_next_page
    # The same shape with other values, paged both ways through the same statements.
    head = await service.orders(where, PageRequest(first=2))
    after = (head.items[-1].placed_at, head.items[-1].id)
    rest = await service.orders(where, PageRequest(first=50, after=after))
    assert [order.id for order in (*head.items, *rest.items)] == expected
    tail = await service.orders(where, PageRequest(first=None, last=2))
    assert [order.id for order in tail.items] == expected[-2:]
    assert tail.has_previous_page


async def test_by_id_reads_bind_any_number_of_ids(service: SqlCommerceService) -> None:
    assert set(await service.orders_by_id([3, 1, 3, 99])) == {1, 3}
    assert await service.customers_by_id([]) == {}
    items = await service.items_by_order([1, 2])
    assert all(not found for found in items.values())
