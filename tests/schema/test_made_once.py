"""Entity objects are made once per record object: the cache's records are converted once."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import cast

from dataintel.schema.commerce import Customer, CustomerTier, Order, OrderStatus
from dataintel.schema.made_once import MadeOnce, results_of
from dataintel.services.commerce import CustomerRecord, OrderRecord

PLACED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def order_record(order_id: int = 7) -> OrderRecord:
    return OrderRecord(
        id=order_id,
        customer_id=3,
        status="paid",
        channel="web",
        placed_at=PLACED,
        total_cents=1999,
        currency="EUR",
    )


def fields_of(order: Order) -> tuple[object, ...]:
    names = [field.name for field in dataclasses.fields(OrderRecord)[1:]]
    return (order.id, order.database_id, *(getattr(order, name) for name in names))


def test_the_same_record_gives_the_same_object() -> None:
    record = order_record()
    order = Order.from_record(record)
    assert Order.from_record(record) is order
    assert (order.database_id, order.status, order.total_cents) == (7, OrderStatus.PAID, 1999)


def test_an_equal_record_read_afresh_gives_a_new_object_with_the_same_fields() -> None:
    first, again = Order.from_record(order_record()), Order.from_record(order_record())
    assert again is not first
    assert fields_of(again) == fields_of(first)


def test_records_of_other_kinds_do_not_mix() -> None:
    customer = CustomerRecord(
        id=7,
        code="C000007",
        email="c7@example.com",
        name="Seven",
        region="europe",
        country="DE",
        tier="gold",
        acquisition_channel="organic",
        signed_up_at=PLACED,
    )
    made = Customer.from_record(customer)
    assert isinstance(made, Customer)
    assert made.tier is CustomerTier.GOLD
    assert isinstance(Order.from_record(order_record()), Order)


def test_an_object_goes_with_its_record() -> None:
    made = MadeOnce(_order_id)
    record = order_record()
    made(record)
    assert len(made) == 1
    del record
    assert len(made) == 0


def _order_id(record: OrderRecord) -> int:
    return record.id


def test_at_most_size_records_are_remembered() -> None:
    made: list[int] = []

    def make(record: OrderRecord) -> int:
        made.append(record.id)
        return record.id

    remember = MadeOnce(make, size=2)
    records = [order_record(n) for n in range(3)]
    for record in records:
        remember(record)
    # The third record cleared the memo: the first is made again, the third is still known.
    remember(records[0])
    remember(records[2])
    assert made == [0, 1, 2, 0]


def test_many_gives_what_each_call_gives() -> None:
    kept, fresh = order_record(11), order_record(12)
    made = Order.from_record(kept)
    orders = Order.from_record.many([kept, fresh, kept])
    assert orders[0] is made
    assert orders[2] is made
    assert orders[1] is Order.from_record(fresh)
    assert fields_of(orders[1]) == fields_of(Order.from_record(order_record(12)))


def test_made_gives_the_objects_of_records_all_made_or_none() -> None:
    kept, fresh = order_record(21), order_record(22)
    made = Order.from_record(kept)
    assert Order.from_record.made([kept, kept]) == [made, made]
    # One not made yet (or None, or an error): nothing is made, the caller goes one by one.
    assert Order.from_record.made([kept, fresh]) is None
    assert Order.from_record.made([kept, None]) is None
    assert Order.from_record.made([cast(OrderRecord, ValueError("no"))]) is None
    assert Order.from_record.made([]) == []


def test_a_made_objects_memo_goes_with_its_record() -> None:
    record = order_record(31)
    order = Order.from_record(record)
    memo = results_of(id(order))
    assert memo == {}
    assert results_of(id(object())) is None
    order_id = id(order)
    del record, order, memo
    assert results_of(order_id) is None


def test_a_cleared_kind_drops_its_objects_memos() -> None:
    remember = MadeOnce(_Made, size=1)
    first = remember(order_record(41))
    assert results_of(id(first)) == {}
    remember(order_record(42))  # past the size: the first is forgotten, its memo too
    assert results_of(id(first)) is None


class _Made:
    def __init__(self, record: OrderRecord) -> None:
        self.record = record
