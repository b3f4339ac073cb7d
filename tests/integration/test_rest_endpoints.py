"""/api/v1: published operations through the real app, the same pipeline as /graphql."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dataintel.app import create_app
from dataintel.gateway.published_operations import REST_PREFIX
from dataintel.observability.metrics import REST_ROUTE
from dataintel.services.auth import OPERATOR, NewUser
from tests.plugins.app import SettingsFactory, serving

PROBLEM = "application/problem+json"
RECENT = "/api/v1/orders/recent"
RECENT_ORDERS = """
query RecentOrders($first: Int = 20, $status: [OrderStatus!] = [PAID, SHIPPED]) {
  orders(first: $first, filter: {status: $status}) {
    totalCount
    nodes {
      id placedAt totalCents currency status
      customer { name region tier }
      items { quantity lineTotalCents product { name category } }
    }
  }
}
"""
PASSWORD = "correct horse battery staple"
MIXED = """operations:
  - path: /mixed
    operation: Mixed
    summary: A public field beside one that needs the analyst role.
    document: |
      query Mixed {
        status { version }
        analytics(query: {measures: ["revenue"]}) { totals { name value } }
      }
"""


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:dataintel:problem:{code}"
    assert body["requestId"] == response.headers["x-request-id"]
    assert body["errors"][0]["extensions"]["code"] == code
    assert body["detail"] == body["errors"][0]["message"]
    return body


async def test_a_query_answers_its_data_as_graphql_would(client: httpx.AsyncClient) -> None:
    response = await client.get(RECENT, params={"first": 3, "status": ["PAID", "REFUNDED"]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert len(data["orders"]["nodes"]) == 3
    assert {node["status"] for node in data["orders"]["nodes"]} <= {"PAID", "REFUNDED"}
    graphql = await client.post(
        "/graphql",
        json={"query": RECENT_ORDERS, "variables": {"first": 3, "status": ["PAID", "REFUNDED"]}},
    )
    assert graphql.json() == {"data": data}


async def test_path_parameters_and_defaults(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/customers/GOLD/features")
    assert response.status_code == 200
    customers = response.json()["customers"]["nodes"]
    assert len(customers) == 5
    assert {customer["tier"] for customer in customers} == {"GOLD"}
    assert {feature["name"] for feature in customers[0]["features"]} == {
        "lifetime_value",
        "churn_risk_score",
        "favorite_category",
    }
    revenue = await client.get(
        "/api/v1/analytics/revenue-by-region", params={"granularity": "QUARTER"}
    )
    assert revenue.status_code == 200
    times = {row["time"][:10] for row in revenue.json()["analytics"]["rows"]}
    assert times == {"2025-01-01", "2025-04-01"}


async def test_etag_and_if_none_match(client: httpx.AsyncClient) -> None:
    first = await client.get(RECENT, params={"first": 2})
    assert first.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('"')
    assert tag.endswith('"')
    # RecentOrders reads fields of maxAge 60, and the request is anonymous.
    assert first.headers["cache-control"] == "public, max-age=60"
    assert first.headers["vary"] == "Authorization, X-API-Key"
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = await client.get(RECENT, params={"first": 2}, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert again.headers["cache-control"] == "public, max-age=60"
        # Answered by the response cache of the GraphQL pipeline, as /graphql would be.
        assert "age" in again.headers
    other = await client.get(RECENT, params={"first": 3}, headers={"If-None-Match": tag})
    assert other.status_code == 200
    assert other.headers["etag"] != tag


async def test_token_endpoint_and_a_credential_make_the_answer_private(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    async with serving(app) as client:
        auth = app.state.runtime.services.auth
        await auth.create_user(OPERATOR, NewUser("rest@example.com", None, PASSWORD, ("viewer",)))
        issued = await client.post(
            "/api/v1/auth/token", json={"email": "rest@example.com", "password": PASSWORD}
        )
        assert issued.status_code == 200, issued.text
        assert issued.headers["cache-control"] == "no-store"
        assert "etag" not in issued.headers
        login = issued.json()["login"]
        assert login["tokenType"] == "Bearer"
        response = await client.get(
            RECENT, params={"first": 1}, headers={"Authorization": f"Bearer {login['token']}"}
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, max-age=60"
        wrong = await client.post(
            "/api/v1/auth/token", json={"email": "rest@example.com", "password": "wrong"}
        )
        body = assert_problem(wrong, 401, "UNAUTHENTICATED")
        assert wrong.headers["www-authenticate"].startswith("Bearer ")
        assert body["data"] == {"login": None}
        assert body["errors"][0]["path"] == ["login"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (RECENT + "?first=abc", "'first' must be an integer"),
        (RECENT + "?first=0", "'first' must be at least 1"),
        (RECENT + "?first=101", "'first' must be at most 100"),
        (RECENT + "?first=1&first=2", "given 2 times"),
        (RECENT + "?first=99999999999", "must be at most 100"),
        (RECENT + "?status=NOPE", "OrderStatus"),
        ("/api/v1/customers/gold/features", "CustomerTier"),
        ("/api/v1/analytics/revenue-by-region?granularity=", "AnalyticsGranularity"),
    ],
)
async def test_malformed_parameters_are_400_problems(
    client: httpx.AsyncClient, url: str, fragment: str
) -> None:
    body = assert_problem(await client.get(url), 400, "BAD_USER_INPUT")
    assert fragment in body["detail"]
    assert body["instance"] == url.split("?")[0]
    assert "data" not in body


async def test_malformed_bodies_are_4xx_problems(client: httpx.AsyncClient) -> None:
    url = "/api/v1/auth/token"
    form = await client.post(url, content=b"email=a", headers={"Content-Type": "text/plain"})
    assert_problem(form, 415, "BAD_USER_INPUT")
    for content, fragment in [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (
            b'{"email": "a@b.c", "password": "x", "admin": true}',
            "Unknown properties in the body: admin",
        ),
        (b'{"email": "", "password": "x"}', "'email' must have at least 1 characters"),
        (b'{"email": 5, "password": "x"}', "String cannot represent"),
        (b'{"email": "a@b.c"}', "password"),
    ]:
        response = await client.post(
            url, content=content, headers={"Content-Type": "application/json"}
        )
        body = assert_problem(response, 400, "BAD_USER_INPUT")
        assert fragment in body["detail"], body["detail"]


async def test_a_bad_credential_is_401_before_anything_runs(client: httpx.AsyncClient) -> None:
    response = await client.get(RECENT, headers={"Authorization": "Bearer not-a-token"})
    body = assert_problem(response, 401, "UNAUTHENTICATED")
    assert "invalid_token" in response.headers["www-authenticate"]
    assert "data" not in body


async def test_methods_other_than_the_operations_are_405(client: httpx.AsyncClient) -> None:
    assert (await client.post(RECENT, json={})).status_code == 405
    token = await client.get("/api/v1/auth/token")
    assert token.status_code == 405
    assert token.headers["allow"] == "POST"


async def test_partial_data_is_a_problem_beside_the_data(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    operations = tmp_path / "operations.yaml"
    operations.write_text(MIXED)
    settings = make_settings(rest_operations_path=operations, anonymous_roles=["viewer"])
    async with serving(create_app(settings)) as client:
        response = await client.get("/api/v1/mixed")
    # Anonymous and without the analyst role: sign in, says the gateway, with a challenge.
    body = assert_problem(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert body["data"]["status"]["version"]
    assert body["data"]["analytics"] is None
    assert body["errors"][0]["path"] == ["analytics"]
    assert response.headers["cache-control"] == "no-store"


async def test_field_rate_limits_apply(make_settings: SettingsFactory) -> None:
    # login allows 10 attempts a minute from one address (@rateLimit), here as over GraphQL.
    # Up to 21 attempts: a slow run may cross into the next minute once.
    statuses: list[int] = []
    async with serving(create_app(make_settings())) as client:
        while len(statuses) < 21:
            response = await client.post(
                "/api/v1/auth/token", json={"email": "nobody@example.com", "password": "x"}
            )
            statuses.append(response.status_code)
            if response.status_code != 401:
                break
    assert statuses[-1] == 429, statuses
    assert len(statuses) > 10
    assert set(statuses[:-1]) == {401}
    body = assert_problem(response, 429, "RATE_LIMITED")
    assert body["retryable"] is True
    assert int(response.headers["retry-after"]) >= 1


async def test_the_request_limit_answers_problems_on_rest_paths(
    make_settings: SettingsFactory,
) -> None:
    # An hour's window: the two requests cannot straddle a window boundary.
    settings = make_settings(rate_limit_requests=1, rate_limit_window_seconds=3600)
    async with serving(create_app(settings)) as client:
        assert (await client.get(RECENT)).status_code == 200
        limited = await client.get(RECENT)
        graphql = await client.post("/graphql", json={"query": "{ status { version } }"})
    assert_problem(limited, 429, "RATE_LIMITED")
    # /graphql keeps its GraphQL-shaped error.
    assert graphql.status_code == 429
    assert graphql.headers["content-type"] == "application/json"
    assert graphql.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_published_operations_run_in_trusted_documents_only_mode(
    make_settings: SettingsFactory,
) -> None:
    async with serving(create_app(make_settings(trusted_documents_only=True))) as client:
        rest = await client.get("/api/v1/status")
        free_text = await client.post("/graphql", json={"query": "{ status { version } }"})
    assert rest.status_code == 200
    assert rest.json()["status"]["version"]
    assert free_text.status_code == 400
    assert free_text.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_rest_can_be_turned_off(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(rest_enabled=False))) as client:
        assert (await client.get(RECENT)).status_code == 404
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/api/")]


async def test_rest_requests_share_one_route_label(make_settings: SettingsFactory) -> None:
    assert REST_ROUTE == REST_PREFIX
    async with serving(create_app(make_settings(metrics_enabled=True))) as client:
        await client.get("/api/v1/customers/GOLD/features?first=1")
        await client.get("/api/v1/customers/SILVER/features?first=1")
        exposition = (await client.get("/metrics")).text
    lines = [
        line
        for line in exposition.splitlines()
        if line.startswith("dataintel_http_requests_total{") and 'route="/api/v1"' in line
    ]
    assert len(lines) == 1, exposition
    assert lines[0].endswith(" 2.0")
