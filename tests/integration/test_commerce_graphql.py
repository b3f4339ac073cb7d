"""Core entities through the real app: relations, pagination, filters and batching."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.graphql import post
from tests.plugins.statements import counting_statements

# The HTTP path on both stores (docs/development.md).
pytestmark = pytest.mark.both_stores

ORDERS_WITH_EVERYTHING = """
query Orders($first: Int!) {
  orders(first: $first) {
    nodes {
      id totalCents placedAt status
      customer { id name region orders(first: 3) { totalCount nodes { id } } }
      items { quantity unitPriceCents lineTotalCents product { id name category } }
    }
  }
}
"""


async def statements_for(
    app: Starlette, client: httpx.AsyncClient, query: str, **variables: Any
) -> tuple[int, dict[str, Any]]:
    with counting_statements(app.state.runtime.engine) as log:
        body = await post(client, query, **variables)
    assert "errors" not in body, body["errors"]
    return len(log), body


async def test_no_n_plus_one(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    async with serving(app) as client:
        small, small_body = await statements_for(app, client, ORDERS_WITH_EVERYTHING, first=10)
        large, large_body = await statements_for(app, client, ORDERS_WITH_EVERYTHING, first=100)
    assert len(small_body["data"]["orders"]["nodes"]) == 10
    assert len(large_body["data"]["orders"]["nodes"]) == 100
    # orders, customers, items, products, each customer's orders and their counts
    assert small == large == 6


async def test_per_item_path_grows_with_the_page(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(loader_batching=False))
    async with serving(app) as client:
        small, _ = await statements_for(app, client, ORDERS_WITH_EVERYTHING, first=10)
        large, _ = await statements_for(app, client, ORDERS_WITH_EVERYTHING, first=100)
    assert large > small * 5


async def test_relations_are_consistent(client: httpx.AsyncClient) -> None:
    body = await post(client, ORDERS_WITH_EVERYTHING, first=20)
    for order in body["data"]["orders"]["nodes"]:
        assert order["totalCents"] == sum(item["lineTotalCents"] for item in order["items"])
        assert order["items"], "every order has items"
        assert all(item["product"] is not None for item in order["items"])
        assert order["customer"]["orders"]["totalCount"] >= 1


async def test_pages_follow_each_other_without_gaps(client: httpx.AsyncClient) -> None:
    query = """query Page($after: String) {
      orders(first: 7, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id placedAt } }
      }
    }"""
    everything = await post(client, "{ orders(first: 21) { nodes { id } } }")
    expected = [node["id"] for node in everything["data"]["orders"]["nodes"]]
    seen: list[str] = []
    after = None
    for _ in range(3):
        page = (await post(client, query, after=after))["data"]["orders"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        assert page["pageInfo"]["hasNextPage"] is True
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
    placed = [edge["node"]["placedAt"] for edge in page["edges"]]
    assert placed == sorted(placed, reverse=True)


async def test_last_page_says_no_more(client: httpx.AsyncClient) -> None:
    query = """query($after: String) { products(first: 100, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } nodes { id } } }"""
    first = (await post(client, query))["data"]["products"]
    total = first["totalCount"]
    collected = len(first["nodes"])
    after = first["pageInfo"]["endCursor"]
    while first["pageInfo"]["hasNextPage"]:
        first = (await post(client, query, after=after))["data"]["products"]
        collected += len(first["nodes"])
        after = first["pageInfo"]["endCursor"]
    assert collected == total


async def test_filters_narrow_orders(client: httpx.AsyncClient) -> None:
    query = """query {
      orders(first: 100, filter: {status: [CANCELLED], minTotal: 50, maxTotal: 500,
                                  placedFrom: "2025-03-01T00:00:00Z",
                                  placedBefore: "2025-09-01T00:00:00Z"}) {
        totalCount nodes { status totalCents placedAt }
      }
    }"""
    orders = (await post(client, query))["data"]["orders"]
    assert orders["totalCount"] > 0
    for order in orders["nodes"]:
        assert order["status"] == "CANCELLED"
        assert 5000 <= order["totalCents"] <= 50000
        assert "2025-03-01" <= order["placedAt"][:10] < "2025-09-01"


async def test_customer_orders_filtered_by_customer(client: httpx.AsyncClient) -> None:
    query = """query {
      customer(id: "5") { id orders(first: 50) { totalCount nodes { id } } }
      orders(first: 50, filter: {customerId: ["5"]}) { totalCount nodes { id } }
    }"""
    data = (await post(client, query))["data"]
    assert data["customer"]["orders"]["totalCount"] == data["orders"]["totalCount"]
    assert data["customer"]["orders"]["nodes"] == data["orders"]["nodes"]


async def test_unknown_ids_are_null(client: httpx.AsyncClient) -> None:
    data = await post(client, '{ customer(id: "999999999") { id } order(id: "0") { id } }')
    assert data["data"] == {"customer": None, "order": None}
    assert data["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert data["errors"][0]["path"] == ["order"]


@pytest.mark.parametrize("first", [101, -1])
async def test_first_beyond_the_maximum_is_bad_user_input(
    client: httpx.AsyncClient, first: int
) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": "query($n: Int!) { orders(first: $n) { nodes { id } } status { version } }",
            "variables": {"n": first},
        },
    )
    body = response.json()
    assert body["data"]["orders"] is None
    assert body["data"]["status"]["version"]
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["maximum"] == 100
    assert error["path"] == ["orders"]


async def test_forged_cursor_is_bad_user_input(client: httpx.AsyncClient) -> None:
    body = await post(client, '{ orders(first: 5, after: "bm90LWEtY3Vyc29y") { nodes { id } } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cursor" in body["errors"][0]["message"]


async def test_events_of_a_customer(client: httpx.AsyncClient) -> None:
    query = """{ events(first: 30, filter: {customerId: ["3"], type: [PURCHASE]}) {
      totalCount nodes { type customer { databaseId } occurredAt } } }"""
    events = (await post(client, query))["data"]["events"]
    for event in events["nodes"]:
        assert event["type"] == "PURCHASE"
        assert event["customer"]["databaseId"] == 3


async def test_loader_batches_are_cut_at_the_batch_size(make_settings: SettingsFactory) -> None:
    query = "{ orders(first: 20) { nodes { customer { databaseId } } } }"

    async def customer_lookups(batch_size: int) -> tuple[int, dict[str, Any]]:
        app = create_app(make_settings(loader_max_batch_size=batch_size))
        async with serving(app) as client:
            with counting_statements(app.state.runtime.engine) as log:
                body = await post(client, query)
        assert "errors" not in body, body["errors"]
        return sum("from customers" in text.lower() for text in log.statements), body

    whole, body = await customer_lookups(500)
    cut, same = await customer_lookups(3)
    customers = {node["customer"]["databaseId"] for node in body["data"]["orders"]["nodes"]}
    assert len(customers) > 3
    assert same == body
    assert whole == 1
    assert cut == -(-len(customers) // 3)
