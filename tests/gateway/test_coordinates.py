"""The coordinates an operation selects are computed once per document, with its fragments."""

from __future__ import annotations

from graphql import build_schema

from dataintel.gateway.coordinates import deprecated_coordinates
from dataintel.gateway.documents import DocumentCache

SCHEMA = build_schema(
    """
    type Query {
      orders(first: Int, filter: Filter): [Order!]!
      legacy: String @deprecated(reason: "Use orders.")
    }
    type Order { id: ID! total: Float @deprecated(reason: "Use totalCents.") totalCents: Int! }
    input Filter { status: [Status!], minTotal: Float @deprecated }
    enum Status { PAID SHIPPED SENT @deprecated(reason: "Use SHIPPED.") }
    """
)


def prepared(query: str) -> dict[str | None, frozenset[str]]:
    cache = DocumentCache(SCHEMA, size=10, max_length=10_000, introspection=True)
    return dict(cache.get(query).coordinates)


def test_fields_arguments_input_fields_and_enum_values_are_named() -> None:
    found = prepared(
        """
        query Dashboard {
          orders(first: 2, filter: {status: [PAID, SENT], minTotal: 5}) { ...Money }
          __typename
          __schema { queryType { name } }
        }
        fragment Money on Order { id total }
        """
    )
    assert found == {
        "Dashboard": {
            "Query.orders",
            "Query.orders(first:)",
            "Query.orders(filter:)",
            "Filter.status",
            "Filter.minTotal",
            "Status.PAID",
            "Status.SENT",
            "Order.id",
            "Order.total",
        }
    }


def test_each_operation_of_a_document_has_its_own() -> None:
    found = prepared(
        """
        query Old { legacy }
        query New($first: Int) { orders(first: $first) @include(if: true) { totalCents } }
        """
    )
    assert found == {
        "Old": {"Query.legacy"},
        "New": {"Query.orders", "Query.orders(first:)", "Order.totalCents"},
    }


def test_an_anonymous_operation_is_keyed_none() -> None:
    assert prepared("{ legacy }") == {None: {"Query.legacy"}}


def test_the_deprecated_coordinates_of_a_schema() -> None:
    assert deprecated_coordinates(SCHEMA) == {
        "Query.legacy": "Use orders.",
        "Order.total": "Use totalCents.",
        "Filter.minTotal": "No longer supported",
        "Status.SENT": "Use SHIPPED.",
    }
