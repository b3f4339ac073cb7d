"""Every kind of schema change is classified as graphql-inspector does and named by coordinate."""

from __future__ import annotations

import pytest
from graphql import build_schema

from dataintel.evolution.changes import Criticality, SchemaChange, compare_schemas

BREAKING, DANGEROUS, SAFE = Criticality.BREAKING, Criticality.DANGEROUS, Criticality.SAFE

BASE = """
directive @tag(name: String) repeatable on FIELD_DEFINITION
interface Node { id: ID! }
type Query {
  order(id: ID!, currency: String = "EUR"): Order
  orders(first: Int, status: Status): [Order!]!
  search(filter: Filter): [Result]
}
type Order implements Node { id: ID! total: Float! note: String status: Status }
type Customer { id: ID! name: String }
union Result = Order
enum Status { PAID SHIPPED }
input Filter { text: String, limit: Int = 10 }
scalar Money
"""


def changes(old: str, new: str) -> list[tuple[Criticality, str, str]]:
    return [
        (change.criticality, change.kind, change.coordinate)
        for change in compare_schemas(build_schema(old), build_schema(new))
    ]


def edited(*replacements: tuple[str, str]) -> str:
    text = BASE
    for before, after in replacements:
        assert before in text, before
        text = text.replace(before, after, 1)
    return text


CASES = {
    "field removed": (
        edited((" note: String", "")),
        [(BREAKING, "FIELD_REMOVED", "Order.note")],
    ),
    "required argument added": (
        edited(("orders(first: Int,", "orders(first: Int, region: String!,")),
        [(BREAKING, "REQUIRED_ARG_ADDED", "Query.orders(region:)")],
    ),
    "output type changed": (
        edited(("total: Float!", "total: Int!")),
        # Float is no longer used anywhere: a variable declared Float would not validate.
        [(BREAKING, "FIELD_CHANGED_KIND", "Order.total"), (BREAKING, "TYPE_REMOVED", "Float")],
    ),
    "non-null output made nullable": (
        edited(("total: Float!", "total: Float")),
        [(BREAKING, "FIELD_CHANGED_KIND", "Order.total")],
    ),
    "nullable output made non-null": (
        edited(("note: String", "note: String!")),
        [(SAFE, "FIELD_CHANGED_KIND_SAFE", "Order.note")],
    ),
    "nullable argument made non-null": (
        edited(("orders(first: Int,", "orders(first: Int!,")),
        [(BREAKING, "ARG_CHANGED_KIND", "Query.orders(first:)")],
    ),
    "non-null argument made nullable": (
        edited(("order(id: ID!,", "order(id: ID,")),
        [(SAFE, "ARG_CHANGED_KIND_SAFE", "Query.order(id:)")],
    ),
    "argument removed": (
        edited((", status: Status)", ")")),
        [(BREAKING, "ARG_REMOVED", "Query.orders(status:)")],
    ),
    "argument default changed": (
        edited(('currency: String = "EUR"', 'currency: String = "USD"')),
        [(DANGEROUS, "ARG_DEFAULT_VALUE_CHANGE", "Query.order(currency:)")],
    ),
    "input field default changed": (
        edited(("limit: Int = 10", "limit: Int = 20")),
        [(DANGEROUS, "INPUT_FIELD_DEFAULT_VALUE_CHANGE", "Filter.limit")],
    ),
    "optional argument added": (
        edited(("orders(first: Int,", "orders(first: Int, after: String,")),
        [(DANGEROUS, "OPTIONAL_ARG_ADDED", "Query.orders(after:)")],
    ),
    "required input field added": (
        edited(("input Filter { text: String,", "input Filter { text: String, scope: ID!,")),
        [(BREAKING, "REQUIRED_INPUT_FIELD_ADDED", "Filter.scope")],
    ),
    "optional input field added": (
        edited(("input Filter { text: String,", "input Filter { text: String, scope: ID,")),
        [(DANGEROUS, "OPTIONAL_INPUT_FIELD_ADDED", "Filter.scope")],
    ),
    "input field made non-null": (
        edited(("input Filter { text: String,", "input Filter { text: String!,")),
        [(BREAKING, "FIELD_CHANGED_KIND", "Filter.text")],
    ),
    "enum value removed": (
        edited(("PAID SHIPPED", "PAID")),
        [(BREAKING, "VALUE_REMOVED_FROM_ENUM", "Status.SHIPPED")],
    ),
    "enum value added": (
        edited(("PAID SHIPPED", "PAID SHIPPED REFUNDED")),
        [(DANGEROUS, "VALUE_ADDED_TO_ENUM", "Status.REFUNDED")],
    ),
    "type removed": (
        edited(("type Customer { id: ID! name: String }", "")),
        [(BREAKING, "TYPE_REMOVED", "Customer")],
    ),
    "type changed kind": (
        edited(("scalar Money", "enum Money { EUR }")),
        [(BREAKING, "TYPE_CHANGED_KIND", "Money")],
    ),
    "union member removed and added": (
        edited(("union Result = Order", "union Result = Customer")),
        [
            (BREAKING, "TYPE_REMOVED_FROM_UNION", "Result"),
            (DANGEROUS, "TYPE_ADDED_TO_UNION", "Result"),
        ],
    ),
    "interface removed": (
        edited(("type Order implements Node {", "type Order {")),
        [(BREAKING, "IMPLEMENTED_INTERFACE_REMOVED", "Order")],
    ),
    "interface added": (
        edited(("type Customer {", "type Customer implements Node {")),
        [(DANGEROUS, "IMPLEMENTED_INTERFACE_ADDED", "Customer")],
    ),
    "field added": (
        edited((" note: String", " note: String placedAt: String")),
        [(SAFE, "FIELD_ADDED", "Order.placedAt")],
    ),
    "type added": (
        edited(("scalar Money", "scalar Money\ntype Product { id: ID! }")),
        [(SAFE, "TYPE_ADDED", "Product")],
    ),
    "description changed": (
        edited(("type Customer {", '"Who buys."\ntype Customer {')),
        [(SAFE, "DESCRIPTION_CHANGED", "Customer")],
    ),
    "field description changed": (
        edited((" note: String", ' "Free text." note: String')),
        [(SAFE, "DESCRIPTION_CHANGED", "Order.note")],
    ),
    "argument description changed": (
        edited(("orders(first: Int,", 'orders("How many." first: Int,')),
        [(SAFE, "DESCRIPTION_CHANGED", "Query.orders(first:)")],
    ),
    "directive removed": (
        edited(("directive @tag(name: String) repeatable on FIELD_DEFINITION", "")),
        [(BREAKING, "DIRECTIVE_REMOVED", "@tag")],
    ),
    "directive argument removed": (
        edited(("@tag(name: String)", "@tag")),
        [(BREAKING, "DIRECTIVE_ARG_REMOVED", "@tag(name:)")],
    ),
    "required directive argument added": (
        edited(("@tag(name: String)", "@tag(name: String, level: Int!)")),
        [(BREAKING, "REQUIRED_DIRECTIVE_ARG_ADDED", "@tag(level:)")],
    ),
    "directive no longer repeatable": (
        edited((" repeatable on", " on")),
        [(BREAKING, "DIRECTIVE_REPEATABLE_REMOVED", "@tag")],
    ),
    "directive location removed and added": (
        edited(("on FIELD_DEFINITION", "on OBJECT")),
        [
            (BREAKING, "DIRECTIVE_LOCATION_REMOVED", "@tag"),
            (SAFE, "DIRECTIVE_LOCATION_ADDED", "@tag"),
        ],
    ),
    "field deprecated": (
        edited(("total: Float!", 'total: Float! @deprecated(reason: "Use totalCents.")')),
        [(SAFE, "DEPRECATION_ADDED", "Order.total")],
    ),
    "enum value deprecated": (
        edited(("PAID SHIPPED", "PAID SHIPPED @deprecated")),
        [(SAFE, "DEPRECATION_ADDED", "Status.SHIPPED")],
    ),
    "root type changed": (
        edited(("type Query {", "schema { query: Root }\ntype Root {")),
        [
            (BREAKING, "ROOT_TYPE_CHANGED", "Root"),
            (BREAKING, "TYPE_REMOVED", "Query"),
            (SAFE, "TYPE_ADDED", "Root"),
        ],
    ),
}


@pytest.mark.parametrize(("new", "expected"), CASES.values(), ids=CASES.keys())
def test_change_is_classified_with_its_coordinate(
    new: str, expected: list[tuple[Criticality, str, str]]
) -> None:
    found = changes(BASE, new)
    assert sorted(found, key=str) == sorted(expected, key=str)


def test_no_change_no_report() -> None:
    assert changes(BASE, BASE) == []


def test_undeprecating_is_dangerous() -> None:
    deprecated = edited(("total: Float!", "total: Float! @deprecated"))
    assert changes(deprecated, BASE) == [(DANGEROUS, "DEPRECATION_REMOVED", "Order.total")]


def test_removing_a_deprecated_field_is_breaking_and_says_it_was_deprecated() -> None:
    deprecated = edited((" note: String", " note: String @deprecated"))
    removed = edited((" note: String", ""))
    [change] = compare_schemas(build_schema(deprecated), build_schema(removed))
    assert change == SchemaChange(
        BREAKING, "FIELD_REMOVED", "Order.note", "Field Order.note was removed (it was deprecated)."
    )


def test_breaking_changes_come_first() -> None:
    new = edited((" note: String", " placedAt: String"), ("PAID SHIPPED", "PAID SHIPPED NEW"))
    criticalities = [
        change.criticality for change in compare_schemas(build_schema(BASE), build_schema(new))
    ]
    assert criticalities == [BREAKING, DANGEROUS, SAFE]
