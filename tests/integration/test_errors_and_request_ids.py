"""The error model on whole requests: typed codes, masking, partial data, request ids in logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from dataintel.app import build_services
from dataintel.directives import PUBLIC
from dataintel.errors import DependencyUnavailableError
from dataintel.http.graphql_endpoint import GraphQLEndpoint
from dataintel.observability.drops import Drops
from dataintel.observability.request_context import RequestContextMiddleware
from dataintel.platform import build_platform
from dataintel.schema import compiled_schema
from dataintel.services.schema_usage import SchemaUsageRecorder
from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory
from tests.plugins.graphql import pipeline_over
from tests.plugins.logs import AccessLines

# GET is a simple request for a browser: CSRF prevention wants a preflight-forcing header.
PREFLIGHT = {"Apollo-Require-Preflight": "true"}


@strawberry.type(directives=[PUBLIC])
class Query:
    @strawberry.field
    def healthy(self) -> str:
        return "yes"

    @strawberry.field
    def broken(self) -> str | None:
        raise RuntimeError("secret connection string postgres://user:hunter2@db")

    @strawberry.field
    def upstream(self) -> str | None:
        raise DependencyUnavailableError("The store is down.", domain="analytics", retry_after=5)


@strawberry.type(directives=[PUBLIC])
class Mutation:
    @strawberry.mutation
    def touch(self) -> bool:
        return True


@pytest.fixture
async def faulty_client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The real endpoint and pipeline over a schema whose resolvers fail on purpose."""
    settings: Settings = make_settings()
    engine = create_engine(settings.store)
    platform = build_platform(settings.store, settings.redis, settings.cache, engine, None)
    services = build_services(settings, engine, None, platform, SchemaUsageRecorder({}), Drops())
    schema = strawberry.Schema(query=Query, mutation=Mutation)
    endpoint = GraphQLEndpoint(
        pipeline_over(compiled_schema(schema), settings, services), settings.http, None
    )
    app = Starlette(
        routes=[Route("/graphql", endpoint.handle, methods=["GET", "POST"])],
        middleware=[Middleware(RequestContextMiddleware)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await engine.dispose()


async def test_unexpected_error_is_masked_and_logged_with_request_id(
    faulty_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await faulty_client.post(
        "/graphql", json={"query": "{ healthy broken }"}, headers={"X-Request-ID": "req-123"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"healthy": "yes", "broken": None}
    [error] = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["path"] == ["broken"]
    assert error["extensions"] == {"code": "INTERNAL", "retryable": False, "requestId": "req-123"}
    assert "hunter2" not in response.text
    logged = [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("path")]
    assert logged, "the masked error must be logged"
    assert logged[0]["request_id"] == "req-123"
    assert "hunter2" in str(logged[0]["exc_info"][1])


async def test_typed_error_keeps_its_extensions(faulty_client: httpx.AsyncClient) -> None:
    response = await faulty_client.post("/graphql", json={"query": "{ healthy upstream }"})
    body = response.json()
    assert body["data"] == {"healthy": "yes", "upstream": None}
    extensions = body["errors"][0]["extensions"]
    assert extensions["code"] == "DEPENDENCY_UNAVAILABLE"
    assert extensions["domain"] == "analytics"
    assert extensions["retryable"] is True
    assert extensions["retryAfter"] == 5
    assert extensions["requestId"] == response.headers["x-request-id"]


async def test_mutation_over_get_is_405_with_allow(faulty_client: httpx.AsyncClient) -> None:
    response = await faulty_client.get(
        "/graphql", params={"query": "mutation { touch }"}, headers=PREFLIGHT
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    posted = await faulty_client.post("/graphql", json={"query": "mutation { touch }"})
    assert posted.json() == {"data": {"touch": True}}


async def test_get_picks_the_query_of_a_mixed_document(faulty_client: httpx.AsyncClient) -> None:
    document = "query Q { healthy } mutation M { touch }"
    query = await faulty_client.get(
        "/graphql", params={"query": document, "operationName": "Q"}, headers=PREFLIGHT
    )
    assert query.json() == {"data": {"healthy": "yes"}}
    mutation = await faulty_client.get(
        "/graphql", params={"query": document, "operationName": "M"}, headers=PREFLIGHT
    )
    assert mutation.status_code == 405


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("abc-123_x:y.z", "abc-123_x:y.z"), ("bad id with spaces", None), ("x" * 129, None)],
)
async def test_request_id_is_taken_when_valid(
    client: httpx.AsyncClient, sent: str, echoed: str | None
) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": sent})
    returned = response.headers["x-request-id"]
    if echoed is None:
        assert returned != sent
        assert len(returned) == 32
    else:
        assert returned == echoed


async def test_access_line_per_request(
    client: httpx.AsyncClient, access_lines: AccessLines
) -> None:
    await client.post(
        "/graphql",
        json={"query": "query Version { status { version } }"},
        headers={"X-Request-ID": "access-1"},
    )
    [line] = access_lines.read()
    assert line["event"] == "request"
    assert line["request_id"] == "access-1"
    assert line["method"] == "POST"
    assert line["path"] == "/graphql"
    assert line["operation"] == "Version"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    assert line["logger"] == "dataintel.access"
    assert line["timestamp"].endswith("Z")
