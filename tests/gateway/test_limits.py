"""Operation limits: what is measured on a document, and the cost of an operation."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import OperationDefinitionNode, parse

from dataintel.directives import Cost
from dataintel.errors import QueryTooComplexError
from dataintel.gateway.analysis import DocumentAnalyzer
from dataintel.gateway.cost import OperationCost, cost_plan
from dataintel.gateway.documents import DocumentCache
from dataintel.gateway.limits import DocumentLimits, measure_structure, parse_document
from dataintel.gateway.policy_table import PolicyTable
from dataintel.gateway.request import RequestRejected
from dataintel.schema import build_graphql_schema, compiled_schema
from dataintel.settings import Settings

SCHEMA = build_graphql_schema()


def rejection(query: str, limits: DocumentLimits | None = None) -> dict[str, Any]:
    """The details of the one QUERY_TOO_COMPLEX error of a document parse_document refuses."""
    with pytest.raises(RequestRejected) as caught:
        parse_document(query, limits or DocumentLimits())
    [error] = caught.value.errors
    assert caught.value.status == 400
    assert isinstance(error, QueryTooComplexError)
    return dict(error.details)


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    document = parse(query)
    [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return cost_plan(SCHEMA, document, operation).cost(variables)


def test_structure_counts_fragments_once_and_leaves_introspection_out_of_depth() -> None:
    measured = measure_structure(
        parse(
            """
            query {
              a: orders { nodes { ...O } } b: orders { nodes { ...O } }
              __schema { types { name } }
            }
            fragment O on Order { id x: total customer { name } }
            """
        )
    )
    assert measured.depth == 4
    assert measured.aliases == 3
    assert measured.root_fields == 3
    # a, nodes, b, nodes, __schema, types, name, and the fragment's four fields once.
    assert measured.fields == 11


def test_each_structural_limit_names_itself_with_measured_and_allowed() -> None:
    deep = "{ " + "orders { nodes { customer { " * 5 + "id" + " } } }" * 5 + " }"
    assert rejection(deep) == {"limit": "depth", "measured": 16, "allowed": 12}
    aliased = "{ status { " + " ".join(f"v{i}: version" for i in range(31)) + " } }"
    assert rejection(aliased) == {"limit": "aliases", "measured": 31, "allowed": 30}
    wide = "{ status { " + " ".join(["dependencies { name }"] * 130) + " } }"
    assert rejection(wide) == {"limit": "fields", "measured": 261, "allowed": 250}
    roots = "{ " + " ".join(["__typename status { version }"] * 21) + " }"
    extensions = rejection(roots, DocumentLimits(max_aliases=100, max_fields=1000))
    assert extensions == {"limit": "rootFields", "measured": 21, "allowed": 20}


def test_the_token_limit_stops_the_parser_and_reports_the_count() -> None:
    query = "{ status { " + "version " * 200 + "} }"
    assert rejection(query, DocumentLimits(max_tokens=100)) == {
        "limit": "tokens",
        "measured": 205,
        "allowed": 100,
    }


def test_comments_count_as_tokens_in_the_limit_and_in_the_measure() -> None:
    query = "{ status { version } " + "# a comment\n" * 300 + "}"
    assert rejection(query, DocumentLimits(max_tokens=100)) == {
        "limit": "tokens",
        "measured": 306,
        "allowed": 100,
    }


def test_directives_past_the_limit_stop_the_parser() -> None:
    query = "{ status { version " + "@skip(if: false) " * 60 + "} }"
    assert rejection(query, DocumentLimits(max_directives=50)) == {
        "limit": "directives",
        "measured": 60,
        "allowed": 50,
    }


def test_a_document_too_deep_for_the_parser_is_too_complex_not_a_syntax_error() -> None:
    query = "{" + "a {" * 400 + "b" + "}" * 401
    extensions = rejection(query, DocumentLimits(max_tokens=10_000))
    assert extensions["limit"] == "depth"
    assert extensions["measured"] == 401


def test_fragment_cycles_and_unknown_fragments_are_left_to_validation() -> None:
    cyclic = parse(
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A status { version } }"
    )
    assert measure_structure(cyclic).depth == 2
    documents = DocumentCache(SCHEMA, size=10, max_length=10_000, introspection=True)
    with pytest.raises(RequestRejected) as caught:
        documents.get("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert "cannot spread fragment" in caught.value.errors[0].message.lower()


def test_cost_multiplies_a_selection_by_the_list_size_asked_for() -> None:
    # orders 1 + 50 * (nodes 1 + customer 1); scalars weigh nothing.
    assert cost("{ orders(first: 50) { nodes { id customer { name } } } }") == 101
    # Without `first`, the argument's default (20) counts.
    assert cost("{ orders { nodes { id } } }") == 21
    nested = "{ customers(first: 10) { nodes { orders(first: 30) { nodes { items { id } } } } } }"
    assert cost(nested) == 1 + 10 * (1 + (1 + 30 * (1 + 1)))


def test_a_connection_costs_the_larger_of_first_and_last() -> None:
    assert cost("{ orders(last: 50) { nodes { id } } }") == 51
    assert cost("{ orders(first: 5, last: 50) { nodes { id } } }") == 51
    backwards = (
        "query ($first: Int, $last: Int) { orders(first: $first, last: $last) { nodes { id } } }"
    )
    # Relay sends first: null when it pages backwards.
    assert cost(backwards, {"first": None, "last": 100}) == 101
    assert cost(backwards, {"first": 3}) == 4
    # nodes(ids:) multiplies its selection by the number of ids.
    assert cost('{ nodes(ids: ["a", "b", "c"]) { ... on Order { customer { name } } } }') == 4


def test_cost_reads_list_sizes_from_variables_and_their_defaults() -> None:
    query = "query ($n: Int = 5) { orders(first: $n) { nodes { id } } }"
    assert cost(query) == 6
    assert cost(query, {"n": 100}) == 101
    assert cost(query, {"n": "many"}) == 6
    assert cost("query ($n: Int) { orders(first: $n) { nodes { id } } }", {}) == 21


def test_cost_follows_the_argument_a_cost_directive_names() -> None:
    features = (
        "query ($ids: [ID!]!) {"
        ' onlineFeatures(entityType: "customer", entityIds: $ids) { features { name } } }'
    )
    assert cost(features, {"ids": ["1", "2", "3"]}) == 1 + 3 * 1
    inline = '{ onlineFeatures(entityType: "customer", entityIds: ["1", "2"]) { entityId } }'
    assert cost(inline) == 1


@strawberry.input
class Page:
    size: int = 25


@strawberry.type
class Tag:
    label: str


@strawberry.type
class Item:
    tag: Tag


def _items(page: Page | None = None) -> list[Item]:
    return []


@strawberry.type
class Catalogue:
    items: list[Item] = strawberry.field(
        resolver=_items, directives=[Cost(weight=3, list_size_argument="page.size")]
    )


def test_a_dotted_list_size_argument_reaches_into_an_input() -> None:
    schema = compiled_schema(strawberry.Schema(query=Catalogue))

    def cost_in(query: str, variables: dict[str, Any] | None = None) -> int:
        document = parse(query)
        [operation] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        return cost_plan(schema, document, operation).cost(variables)

    # items weighs 3 (its @cost), each item's tag 1.
    assert cost_in("{ items(page: {size: 4}) { tag { label } } }") == 3 + 4
    assert cost_in("{ items(page: {}) { tag { label } } }") == 3 + 25
    with_variable = "query ($p: Page) { items(page: $p) { tag { label } } }"
    assert cost_in(with_variable, {"p": {"size": 9}}) == 3 + 9
    inner = "query ($n: Int!) { items(page: {size: $n}) { tag { label } } }"
    assert cost_in(inner, {"n": 2}) == 3 + 2


def test_a_fragment_spread_many_times_is_planned_once() -> None:
    # Each level doubles the selections an expansion would make: 2^12 copies of F0.
    levels = 12
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} a{i}: status {{ ...S{i} }} }}"
        f" fragment S{i} on Status {{ version }}"
        for i in range(levels)
    )
    query = "{ ...F0 } " + fragments + f" fragment F{levels} on Query {{ status {{ version }} }}"
    assert cost(query) == levels + 1


def test_plans_are_built_once_per_document_and_kept_on_it() -> None:
    documents = DocumentCache.from_settings(SCHEMA, Settings().graphql, Settings().limits)
    analyzer = DocumentAnalyzer(SCHEMA, PolicyTable.from_schema(SCHEMA))
    costs = OperationCost(Settings().limits)
    text = "query ($n: Int) { orders(first: $n) { nodes { id } } }"
    prepared = documents.get(text)
    operation = prepared.operation(None)
    assert operation is not None
    assert costs.check(analyzer.analyze(prepared, operation).cost, {"n": 10}) == 11
    assert costs.check(analyzer.analyze(documents.get(text), operation).cost, {"n": 99}) == 100
    assert analyzer.built == 1
    assert list(prepared.analyses) == [None]
    with pytest.raises(RequestRejected) as caught:
        costs.check(analyzer.analyze(prepared, operation).cost, {"n": 100_000})
    [error] = caught.value.errors
    assert isinstance(error, QueryTooComplexError)
    assert error.extensions() == {
        "code": "QUERY_TOO_COMPLEX",
        "retryable": False,
        "limit": "cost",
        "measured": 100_001,
        "allowed": 10_000,
    }
