"""Cursor connections through the real app: first/after and last/before as the Relay
specification says, pageInfo in both directions, the page-size cap, stable keyset cursors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.store import tables
from tests.plugins.app import SettingsFactory, serving

# The HTTP path on both stores (docs/development.md).
pytestmark = pytest.mark.both_stores

ORDERS = """
query Orders($first: Int, $after: String, $last: Int, $before: String) {
  orders(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

CUSTOMER_ORDERS = """
query CustomerOrders($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  customer(id: $id) {
    orders(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      edges { cursor node { id } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""


async def connection(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    body = response.json()
    assert "errors" not in body, body["errors"]
    data = body["data"]
    found: dict[str, Any] = data["customer"]["orders"] if "customer" in data else data["orders"]
    assert [edge["node"]["id"] for edge in found["edges"]] == [
        node["id"] for node in found.get("nodes", [edge["node"] for edge in found["edges"]])
    ]
    if found["edges"]:
        assert found["pageInfo"]["startCursor"] == found["edges"][0]["cursor"]
        assert found["pageInfo"]["endCursor"] == found["edges"][-1]["cursor"]
    else:
        assert found["pageInfo"]["startCursor"] is None
        assert found["pageInfo"]["endCursor"] is None
    return found


async def forwards(client: httpx.AsyncClient, query: str, size: int, **extra: Any) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = await connection(client, query, first=size, after=after, **extra)
        seen += [edge["node"]["id"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is False
        if not page["pageInfo"]["hasNextPage"]:
            return seen
        after = page["pageInfo"]["endCursor"]


async def backwards(client: httpx.AsyncClient, query: str, size: int, **extra: Any) -> list[str]:
    seen: list[str] = []
    before = None
    while True:
        page = await connection(client, query, last=size, before=before, **extra)
        seen = [edge["node"]["id"] for edge in page["edges"]] + seen
        assert page["pageInfo"]["hasNextPage"] is False
        if not page["pageInfo"]["hasPreviousPage"]:
            return seen
        before = page["pageInfo"]["startCursor"]


async def test_paging_forwards_and_backwards_gets_every_order_once(
    client: httpx.AsyncClient,
) -> None:
    total = (await connection(client, ORDERS, first=0))["totalCount"]
    ahead = await forwards(client, ORDERS, 100)
    behind = await backwards(client, ORDERS, 100)
    assert len(ahead) == len(set(ahead)) == total
    assert len(behind) == len(set(behind)) == total
    # Both directions see the one sort order (newest first).
    assert behind == ahead


async def test_a_customers_orders_page_both_ways(client: httpx.AsyncClient) -> None:
    customer = {"id": "3"}
    total = (await connection(client, CUSTOMER_ORDERS, first=0, **customer))["totalCount"]
    assert total >= 3
    ahead = await forwards(client, CUSTOMER_ORDERS, 2, **customer)
    behind = await backwards(client, CUSTOMER_ORDERS, 2, **customer)
    assert ahead == behind
    assert len(set(ahead)) == total


async def test_first_and_last_together_follow_the_specification(
    client: httpx.AsyncClient,
) -> None:
    ten = await connection(client, ORDERS, first=10)
    ids = [edge["node"]["id"] for edge in ten["edges"]]
    cursors = [edge["cursor"] for edge in ten["edges"]]
    # Between cursors 1 and 8 are items 2..7; the first 4 of them, then the last 2 of those.
    both = await connection(client, ORDERS, after=cursors[1], before=cursors[8], first=4, last=2)
    assert [edge["node"]["id"] for edge in both["edges"]] == ids[4:6]
    assert both["pageInfo"]["hasNextPage"] is True  # 6 items between, more than first
    assert both["pageInfo"]["hasPreviousPage"] is True  # more than last
    # last beyond what first leaves: all of them.
    wide = await connection(client, ORDERS, after=cursors[1], before=cursors[8], first=3, last=5)
    assert [edge["node"]["id"] for edge in wide["edges"]] == ids[2:5]
    assert wide["pageInfo"]["hasPreviousPage"] is True  # 6 items between, more than 5
    exact = await connection(client, ORDERS, after=cursors[1], before=cursors[8], last=6)
    assert [edge["node"]["id"] for edge in exact["edges"]] == ids[2:8]
    assert exact["pageInfo"]["hasPreviousPage"] is False
    none = await connection(client, ORDERS, first=5, last=0)
    assert none["edges"] == []


async def test_last_before_is_the_page_before_the_cursor(client: httpx.AsyncClient) -> None:
    ten = await connection(client, ORDERS, first=10)
    ids = [edge["node"]["id"] for edge in ten["edges"]]
    page = await connection(client, ORDERS, last=3, before=ten["edges"][6]["cursor"])
    assert [edge["node"]["id"] for edge in page["edges"]] == ids[3:6]
    assert page["pageInfo"]["hasPreviousPage"] is True
    first_three = await connection(client, ORDERS, last=5, before=ten["edges"][3]["cursor"])
    assert [edge["node"]["id"] for edge in first_three["edges"]] == ids[:3]
    assert first_three["pageInfo"]["hasPreviousPage"] is False


@pytest.mark.parametrize(("argument", "value"), [("last", 101), ("last", -1), ("first", 101)])
async def test_the_page_size_cap_applies_to_first_and_last(
    client: httpx.AsyncClient, argument: str, value: int
) -> None:
    response = await client.post("/graphql", json={"query": ORDERS, "variables": {argument: value}})
    body = response.json()
    assert body["data"]["orders"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["argument"] == argument


async def test_every_connection_pages_backwards(client: httpx.AsyncClient) -> None:
    for field in ("customers", "products", "events"):
        query = f"""query P($last: Int, $before: String) {{
          {field}(last: $last, before: $before) {{
            edges {{ cursor node {{ id }} }}
            pageInfo {{ hasPreviousPage startCursor }}
          }} }}"""
        response = await client.post("/graphql", json={"query": query, "variables": {"last": 3}})
        last_three = response.json()["data"][field]
        assert len(last_three["edges"]) == 3
        before = last_three["pageInfo"]["startCursor"]
        variables = {"last": 2, "before": before}
        response = await client.post("/graphql", json={"query": query, "variables": variables})
        previous = response.json()["data"][field]
        assert len(previous["edges"]) == 2
        ids = {edge["node"]["id"] for edge in previous["edges"]}
        assert ids.isdisjoint({edge["node"]["id"] for edge in last_three["edges"]})


async def test_cursors_stay_put_when_orders_are_placed_meanwhile(
    make_settings: SettingsFactory,
) -> None:
    app: Starlette = create_app(make_settings(response_cache_enabled=False))
    async with serving(app) as client:
        total = (await connection(client, ORDERS, first=0))["totalCount"]
        first_page = await connection(client, ORDERS, first=50)
        async with app.state.runtime.engine.begin() as store:
            # Newer than every order (so it sorts first) and placed in the middle of the list.
            for placed_at in (datetime(2030, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)):
                await store.execute(
                    sa.insert(tables.orders).values(
                        customer_id=1,
                        status="placed",
                        channel="web",
                        placed_at=placed_at,
                        total_cents=100,
                        currency="USD",
                    )
                )
        seen = [edge["node"]["id"] for edge in first_page["edges"]]
        after = first_page["pageInfo"]["endCursor"]
        while after is not None:
            page = await connection(client, ORDERS, first=100, after=after)
            seen += [edge["node"]["id"] for edge in page["edges"]]
            after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    # No order twice, none of the earlier ones skipped; the one placed later than the first
    # page is not in it, the one placed in the middle is where it sorts.
    assert len(seen) == len(set(seen))
    assert len(seen) in (total, total + 1)
