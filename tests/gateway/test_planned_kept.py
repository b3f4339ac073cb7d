"""A selection's leaves kept per made object: kept only when pure, bounded, copied out."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from typing import Any

from strawberry.types.base import StrawberryObjectDefinition

from dataintel.gateway.planned.kept import PER_OBJECT, keep, kept_many
from dataintel.schema import build_schema
from dataintel.schema.commerce import Order
from dataintel.schema.made_once import MadeOnce, results_of
from dataintel.services.commerce import OrderRecord


def order_record(order_id: int) -> OrderRecord:
    return OrderRecord(
        id=order_id,
        customer_id=3,
        status="paid",
        channel="web",
        placed_at=datetime(2026, 1, 2, tzinfo=UTC),
        total_cents=1999,
        currency="EUR",
    )


class Selection:
    """Any hashable object stands for a selection here."""


def test_a_fill_is_kept_and_copied_out_per_request() -> None:
    records = [order_record(n) for n in (101, 102)]
    orders = Order.from_record.many(records)
    selection = Selection()
    assert kept_many(orders, selection) is None
    keep(orders[0], selection, {"id": "a", "total": 19.99, "customer": None})
    # One object without it: nothing is copied, the caller fills each one.
    assert kept_many(orders, selection) is None
    keep(orders[1], selection, {"id": "b", "total": 1.5, "customer": None})
    first, again = kept_many(orders, selection), kept_many(orders, selection)
    assert (
        first
        == again
        == [
            {"id": "a", "total": 19.99, "customer": None},
            {"id": "b", "total": 1.5, "customer": None},
        ]
    )
    assert first is not None
    assert again is not None
    # Each request gets its own dictionaries (its keyed fields are set in them).
    assert first[0] is not again[0]
    first[0]["customer"] = {"id": "c"}
    assert kept_many(orders, selection) == again


def test_only_made_objects_and_immutable_values_are_kept() -> None:
    selection = Selection()
    loose = object()
    keep(loose, selection, {"id": "a"})
    assert results_of(id(loose)) is None
    record = order_record(103)
    order = Order.from_record(record)
    value: Any = ["a", "list"]
    keep(order, selection, {"id": "a", "tags": value})
    assert kept_many([order], selection) is None


def test_at_most_per_object_selections_are_kept() -> None:
    record = order_record(104)
    order = Order.from_record(record)
    selections = [Selection() for _ in range(PER_OBJECT + 1)]
    for index, selection in enumerate(selections):
        keep(order, selection, {"id": str(index)})
    memo = results_of(id(order))
    assert memo is not None
    assert len(memo) <= PER_OBJECT
    assert kept_many([order], selections[-1]) == [{"id": str(PER_OBJECT)}]
    # Kept once: a second fill of the same selection does not replace the first.
    keep(order, selections[-1], {"id": "other"})
    assert kept_many([order], selections[-1]) == [{"id": str(PER_OBJECT)}]


# What a made object's plain methods compute, checked to be from the object alone: a new
# one must be pure too (no clock, no context, no request) before it joins this list, since
# its value is kept with the object across requests.
PURE_METHODS = {("Order", "total"), ("Product", "price"), ("OrderItem", "line_total_cents")}


def test_the_plain_methods_of_made_objects_are_known_to_be_pure() -> None:
    schema = build_schema()
    methods = set()
    for type_definition in schema.schema_converter.type_map.values():
        definition = type_definition.definition
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        if not isinstance(getattr(definition.origin, "from_record", None), MadeOnce):
            continue
        for field in definition.fields:
            resolver = field.base_resolver
            if (
                resolver is not None
                and resolver.self_parameter is not None
                and resolver.info_parameter is None
                and not resolver.arguments
                and not inspect.iscoroutinefunction(resolver.wrapped_func)
            ):
                methods.add((definition.name, field.python_name))
    assert methods == PURE_METHODS
