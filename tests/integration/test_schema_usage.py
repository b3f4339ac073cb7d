"""Usage of deprecated fields through the real app: counts rise and name the sending client."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from dataintel.app import create_app
from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService
from tests.plugins.app import SettingsFactory, serving

PASSWORD = "correct horse battery staple"
LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { token }
}
"""
WITH_TOTAL = "query Dashboard { orders(first: 2) { nodes { id total } } }"
WITHOUT_TOTAL = "query Modern { orders(first: 2) { nodes { id totalCents currency } } }"
USAGE = """
query Usage($deprecatedOnly: Boolean) {
  schemaUsage(deprecatedOnly: $deprecatedOnly) {
    coordinate requests clients lastSeen deprecationReason topClients { client requests }
  }
}
"""


async def post(
    client: httpx.AsyncClient,
    query: str,
    headers: dict[str, str] | None = None,
    **variables: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers or {}
    )
    body: dict[str, Any] = response.json()
    assert response.status_code == 200, body
    return body


async def token(client: httpx.AsyncClient, auth: SqlAuthService, email: str, role: str) -> str:
    """A bearer token of a new user holding the role; the user's id is user:<id> in counts."""
    await auth.create_user(OPERATOR, NewUser(email, None, PASSWORD, (role,)))
    body = await post(client, LOGIN, email=email, password=PASSWORD)
    return f"Bearer {body['data']['login']['token']}"


def bearer_user_id(auth_header: str) -> str:
    import jwt

    claims = jwt.decode(auth_header.removeprefix("Bearer "), options={"verify_signature": False})
    return f"user:{claims['sub']}"


async def usage(
    client: httpx.AsyncClient, admin: str, *, deprecated_only: bool = True
) -> dict[str, dict[str, Any]]:
    body = await post(client, USAGE, {"Authorization": admin}, deprecatedOnly=deprecated_only)
    assert "errors" not in body, body["errors"]
    return {entry["coordinate"]: entry for entry in body["data"]["schemaUsage"]}


@pytest.fixture
async def gateway(make_settings: SettingsFactory) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(make_settings())
    async with serving(app) as client:
        yield client, app.state.runtime.services.auth


async def test_requests_selecting_a_deprecated_field_are_counted_per_client(
    gateway: tuple[httpx.AsyncClient, SqlAuthService],
) -> None:
    client, auth = gateway
    admin = await token(client, auth, "admin@example.com", "admin")
    viewer = await token(client, auth, "viewer@example.com", "viewer")

    before = await usage(client, admin)
    assert before["Order.total"]["requests"] == 0
    assert before["Order.total"]["lastSeen"] is None
    assert before["Order.total"]["deprecationReason"].startswith("A float cannot hold")

    dashboard = {"apollographql-client-name": "sales-dashboard"}
    for _ in range(2):
        await post(client, WITH_TOTAL, dashboard)
    await post(client, WITH_TOTAL, {"graphql-client-name": "ops-report"})
    await post(client, WITH_TOTAL, {"Authorization": viewer, **dashboard})
    await post(client, WITHOUT_TOTAL, dashboard)
    await post(client, WITH_TOTAL)

    total = (await usage(client, admin))["Order.total"]
    assert total["requests"] == 5
    assert total["clients"] == 4
    assert total["lastSeen"] is not None
    assert total["topClients"] == [
        {"client": "client:sales-dashboard", "requests": 2},
        {"client": "anonymous", "requests": 1},
        {"client": "client:ops-report", "requests": 1},
        {"client": bearer_user_id(viewer), "requests": 1},
    ]


async def test_every_coordinate_is_listed_when_asked(
    gateway: tuple[httpx.AsyncClient, SqlAuthService],
) -> None:
    client, auth = gateway
    admin = await token(client, auth, "admin@example.com", "admin")
    await post(client, WITHOUT_TOTAL, {"apollographql-client-name": "modern-app"})

    deprecated = await usage(client, admin)
    assert "Order.totalCents" not in deprecated
    everything = await usage(client, admin, deprecated_only=False)
    assert everything["Order.totalCents"]["requests"] == 1
    assert everything["Query.orders(first:)"]["topClients"] == [
        {"client": "client:modern-app", "requests": 1}
    ]
    assert everything["Order.total"]["requests"] == 0


async def test_only_admins_read_schema_usage(
    gateway: tuple[httpx.AsyncClient, SqlAuthService],
) -> None:
    client, auth = gateway
    viewer = await token(client, auth, "viewer@example.com", "viewer")
    for headers, code in (({}, "UNAUTHENTICATED"), ({"Authorization": viewer}, "FORBIDDEN")):
        body = await post(client, USAGE, headers)
        assert body["data"] == {"schemaUsage": None}
        assert body["errors"][0]["extensions"]["code"] == code


@pytest.mark.redis
async def test_replicas_share_counts_through_redis(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, schema_usage_flush_seconds=0.05)
    first, second = create_app(settings), create_app(settings)
    async with serving(first) as one, serving(second) as other:
        auth = second.state.runtime.services.auth
        admin = await token(other, auth, "admin@example.com", "admin")
        await post(one, WITH_TOTAL, {"apollographql-client-name": "sales-dashboard"})
        await post(other, WITH_TOTAL, {"apollographql-client-name": "ops-report"})

        # The first replica adds its counts to Redis in the background; poll with a deadline.
        deadline = time.monotonic() + 10
        while True:
            total = (await usage(other, admin))["Order.total"]
            if total["requests"] == 2 or time.monotonic() > deadline:
                break
        assert total["requests"] == 2
        assert total["clients"] == 2
        assert {entry["client"] for entry in total["topClients"]} == {
            "client:sales-dashboard",
            "client:ops-report",
        }


@pytest.mark.redis
async def test_counts_outlive_the_replica_that_made_them(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, schema_usage_flush_seconds=3600)
    async with serving(create_app(settings)) as gone:
        for _ in range(3):
            await post(gone, WITH_TOTAL, {"apollographql-client-name": "sales-dashboard"})
    # Its counts went to Redis when it shut down, long before its next flush was due.
    later = create_app(settings)
    async with serving(later) as client:
        admin = await token(client, later.state.runtime.services.auth, "a@example.com", "admin")
        total = (await usage(client, admin))["Order.total"]
    assert total["requests"] == 3
    assert total["topClients"] == [{"client": "client:sales-dashboard", "requests": 3}]
