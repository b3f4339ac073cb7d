"""Whole responses cached by document, variables and audience; Cache-Control for CDNs."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.cache import entity_tag
from dataintel.cache.invalidation_feed import InvalidationFeed
from dataintel.store import tables
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import runtime_of
from tests.plugins.statements import counting_statements

CUSTOMER = "query Customer($id: ID!) { customer(id: $id) { id databaseId name region } }"


async def get(client: httpx.AsyncClient, query: str, **variables: Any) -> httpx.Response:
    """A query over GET, as a CDN would forward it."""
    params = {"query": query}
    if variables:
        params["variables"] = orjson.dumps(variables).decode()
    # The preflight header is what the gateway's CSRF check asks of a GET.
    headers = {"Accept": "application/json", "Apollo-Require-Preflight": "true"}
    return await client.get("/graphql", params=params, headers=headers)


async def rename(app: Starlette, customer_id: int, name: str) -> None:
    async with runtime_of(app).engine.begin() as connection:
        await connection.execute(
            sa.update(tables.customers)
            .where(tables.customers.c.id == customer_id)
            .values(name=name)
        )


async def test_get_answers_carry_cache_control_fit_for_a_cdn(client: httpx.AsyncClient) -> None:
    entity = await get(client, CUSTOMER, id="1")
    assert entity.headers["cache-control"] == "public, max-age=60"
    catalog = await get(client, "{ featureViews { name features { name } } }")
    assert catalog.headers["cache-control"] == "public, max-age=3600"
    mixed = await get(client, '{ featureViews { name } customer(id: "1") { name } }')
    assert mixed.headers["cache-control"] == "public, max-age=60"
    live = await get(client, "{ status { version } }")
    assert live.headers["cache-control"] == "no-store"
    failed = await get(client, '{ customer(id: "x") { name } }')
    assert failed.headers["cache-control"] == "no-store"
    posted = await client.post("/graphql", json={"query": CUSTOMER, "variables": {"id": "1"}})
    assert "cache-control" not in posted.headers


async def test_a_repeated_request_is_served_whole_from_cache(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    async with serving(app) as client:
        first = await get(client, CUSTOMER, id="1")
        assert "age" not in first.headers
        with counting_statements(runtime_of(app).engine) as log:
            second = await get(client, CUSTOMER, id="1")
        assert len(log) == 0
        assert second.json() == first.json()
        assert int(second.headers["age"]) >= 0
        other = await get(client, CUSTOMER, id="2")
        assert "age" not in other.headers
        assert other.json()["data"]["customer"]["databaseId"] == 2


async def test_invalidating_the_data_invalidates_the_response(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    async with serving(app) as client:
        before = (await get(client, CUSTOMER, id="1")).json()
        await rename(app, 1, "Someone Else")
        assert (await get(client, CUSTOMER, id="1")).json() == before
        await runtime_of(app).platform.cache.invalidate([entity_tag("customer", 1)])
        after = await get(client, CUSTOMER, id="1")
        assert "age" not in after.headers
        assert after.json()["data"]["customer"]["name"] == "Someone Else"


async def test_responses_with_errors_are_not_cached(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    async with serving(app) as client:
        query = '{ customer(id: "1") { name } bad: customer(id: "x") { name } }'
        await get(client, query)
        again = await get(client, query)
        assert "age" not in again.headers
        assert again.json()["errors"]


async def test_off_switch_keeps_the_http_header(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(response_cache_enabled=False))) as client:
        await get(client, CUSTOMER, id="1")
        again = await get(client, CUSTOMER, id="1")
        assert "age" not in again.headers
        # What a CDN may do does not depend on whether the gateway keeps responses itself.
        assert again.headers["cache-control"] == "public, max-age=60"


@pytest.mark.redis
async def test_replicas_share_responses_and_their_invalidation(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    first_app, second_app = create_app(settings), create_app(settings)
    async with serving(first_app) as first, serving(second_app) as second:
        feed: InvalidationFeed = first_app.state.invalidation_feed
        async with asyncio.timeout(10):
            await feed.wait_for(subscriptions=1)
        body = (await get(first, CUSTOMER, id="1")).json()
        await runtime_of(first_app).platform.cache.settle_loads()
        shared = await get(second, CUSTOMER, id="1")
        assert "age" in shared.headers
        assert shared.json() == body
        await rename(first_app, 1, "Renamed Twice")
        heard = feed.received
        await runtime_of(second_app).platform.cache.invalidate([entity_tag("customer", 1)])
        # The first replica's in-process copy goes when the bump's message arrives.
        async with asyncio.timeout(10):
            await feed.wait_for(received=heard + 1)
        renamed = await get(first, CUSTOMER, id="1")
        assert "age" not in renamed.headers
        assert renamed.json()["data"]["customer"]["name"] == "Renamed Twice"


async def test_persisted_query_over_get_is_cacheable_by_a_cdn(client: httpx.AsyncClient) -> None:
    query = '{ product(id: "3") { databaseId name category } }'
    digest = hashlib.sha256(query.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    registered = await client.post("/graphql", json={"query": query, "extensions": extensions})
    assert "errors" not in registered.json()
    response = await client.get(
        "/graphql",
        params={"extensions": orjson.dumps(extensions).decode()},
        headers={"Accept": "application/json", "Apollo-Require-Preflight": "true"},
    )
    assert response.status_code == 200
    assert response.json()["data"]["product"]["databaseId"] == 3
    assert response.headers["cache-control"] == "public, max-age=60"


async def test_a_kept_request_follows_the_switch_and_the_viewer(
    make_settings: SettingsFactory,
) -> None:
    """A kept request's cache key is kept for its viewer and the cache's switch as they were
    (RequestPipeline's ViewerDecisions): the switch turned off is honoured at once, and on
    again the same entry answers."""
    app = create_app(make_settings())
    async with serving(app) as client:
        first = await get(client, CUSTOMER, id="1")
        hit = await get(client, CUSTOMER, id="1")
        assert "age" not in first.headers
        assert "age" in hit.headers
        responses = app.state.pipeline._responses
        responses.enabled = False
        try:
            off = await get(client, CUSTOMER, id="1")
            assert "age" not in off.headers
        finally:
            responses.enabled = True
        again = await get(client, CUSTOMER, id="1")
        assert "age" in again.headers
        assert again.json() == hit.json() == off.json() == first.json()
