"""GET /graphql through one ASGI layer (http/graphql_path.py): taken, answering as the stack does.

Each comparison sends the same request to the same app twice: once as a client does (the
layer answers it) and once to the middleware stack below the layer, which is how every GET
was answered before. Status, body and headers (in order) must be the same, and so must
what the request counts and logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from dataintel.app import create_app
from dataintel.cache import entity_tag
from dataintel.cache.invalidation_feed import InvalidationFeed
from dataintel.gateway.persisted_queries import APQ_KEY_PREFIX
from dataintel.gateway.pipeline import LONGEST_KEPT_REQUEST, RequestPipeline
from dataintel.gateway.trusted_documents import TrustedDocumentRegistry
from dataintel.http.drain import DRAIN_STATE_KEY, Drain
from dataintel.http.graphql_path import GraphQLPath
from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService
from tests.integration.test_response_cache import rename
from tests.plugins.app import SettingsFactory
from tests.plugins.faults import runtime_of
from tests.plugins.logs import AccessLines

CUSTOMER = 'query Customer { customer(id: "1") { id databaseId name } }'
PREFLIGHT = {"Accept": "application/json", "Apollo-Require-Preflight": "true"}
VARYING = frozenset({"age", "ratelimit-remaining", "ratelimit-reset"})
"""Headers whose values move between two requests made one after the other."""
PASSWORD = "correct horse battery staple"
LOGIN = """
mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) {
  token } }
"""


def apq_params(text: str) -> dict[str, str]:
    digest = hashlib.sha256(text.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    return {"extensions": orjson.dumps(extensions).decode()}


def get_path_of(app: Starlette) -> GraphQLPath:
    """The app's GET layer, from the middleware stack Starlette built on the first request."""
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, GraphQLPath):
        layer = getattr(layer, "app", None)
    assert layer is not None, "the app has no GET layer"
    return layer


class Paths:
    """Two clients of one app: ``layer`` as any client, ``stack`` past the layer."""

    def __init__(
        self,
        app: Starlette,
        stack_app: ASGIApp,
        layer: httpx.AsyncClient,
        stack: httpx.AsyncClient,
    ) -> None:
        self.app = app
        self.stack_app = stack_app
        """The middleware stack below the layer, as an ASGI app."""
        self.layer = layer
        self.stack = stack

    @property
    def answered(self) -> int:
        return get_path_of(self.app).answered

    async def both(
        self, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[httpx.Response, httpx.Response]:
        """The same GET through the layer, then through the stack; the layer answered one."""
        before = self.answered
        through_layer = await self.layer.get("/graphql", params=params, headers=headers)
        assert self.answered == before + 1
        through_stack = await self.stack.get("/graphql", params=params, headers=headers)
        assert self.answered == before + 1
        return through_layer, through_stack


@asynccontextmanager
async def paths(app: Starlette) -> AsyncIterator[Paths]:
    async def stack(scope: Scope, receive: Receive, send: Send) -> None:
        # What Starlette.__call__ does before its middleware stack.
        scope["app"] = app
        await get_path_of(app).app(scope, receive, send)

    async with app.router.lifespan_context(app):
        layer_transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40_000))
        stack_transport = httpx.ASGITransport(app=stack, client=("127.0.0.1", 40_000))
        base = "http://testserver"
        async with (
            httpx.AsyncClient(transport=layer_transport, base_url=base) as layer,
            httpx.AsyncClient(transport=stack_transport, base_url=base) as through_stack,
        ):
            # The first request builds the middleware stack the layer sits in.
            await layer.get("/healthz")
            yield Paths(app, stack, layer, through_stack)


def assert_same(through_layer: httpx.Response, through_stack: httpx.Response) -> None:
    """Same status, bytes, and headers in the same order (values that tick aside)."""
    assert through_layer.status_code == through_stack.status_code
    assert through_layer.content == through_stack.content

    def headers(response: httpx.Response) -> list[tuple[bytes, bytes | None]]:
        return [
            (name, None if name.decode() in VARYING else value)
            for name, value in response.headers.raw
        ]

    assert headers(through_layer) == headers(through_stack)


async def signed_in(both: Paths, email: str, role: str) -> dict[str, str]:
    """The GET headers of a new user with this role, signed in with a bearer token."""
    auth: SqlAuthService = both.app.state.runtime.services.auth
    await auth.create_user(OPERATOR, NewUser(email, None, PASSWORD, (role,)))
    login = await both.layer.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": email, "password": PASSWORD}}
    )
    token = login.json()["data"]["login"]["token"]
    return {**PREFLIGHT, "Authorization": f"Bearer {token}"}


def request_id(name: str) -> dict[str, str]:
    """A fixed request id: error bodies and the echoed header are then the same bytes."""
    return {"X-Request-ID": "get-path-" + name.replace(" ", "-")}


@pytest.mark.redis
async def test_a_persisted_hit_answers_as_the_stack_does(
    make_settings: SettingsFactory, redis_url: str, access_lines: AccessLines
) -> None:
    app = create_app(make_settings(redis_url=redis_url))
    async with paths(app) as both:
        extensions = orjson.loads(apq_params(CUSTOMER)["extensions"])
        registered = await both.layer.post(
            "/graphql", json={"query": CUSTOMER, "extensions": extensions}
        )
        assert "errors" not in registered.json()
        params = {"operationName": "Customer", **apq_params(CUSTOMER)}
        headers = {**PREFLIGHT, **request_id("hit")}
        # Registered by a POST that ran it: the GETs are answered from the response cache.
        first = await both.layer.get("/graphql", params=params, headers=headers)
        metrics = app.state.metrics

        def counted() -> tuple[float | None, ...]:
            sample = metrics.registry.get_sample_value
            return (
                sample(
                    "dataintel_http_requests_total",
                    {"route": "/graphql", "method": "GET", "status": "200"},
                ),
                sample(
                    "dataintel_graphql_operations_total",
                    {"operation": "Customer", "type": "query"},
                ),
                sample(
                    "dataintel_cache_lookups_total",
                    {"cache": "response", "level": "memory", "outcome": "hit"},
                ),
            )

        before = counted()
        through_layer, through_stack = await both.both(params, headers)
        after = counted()
        assert "age" in through_layer.headers
        assert through_layer.json() == first.json() == registered.json()
        assert_same(through_layer, through_stack)
        assert through_layer.headers["x-request-id"] == "get-path-hit"
        assert through_layer.headers["cache-control"] == "public, max-age=60"
        assert through_layer.headers["vary"] == "Accept, Authorization, X-API-Key"
        assert "ratelimit-limit" in through_layer.headers
        # Each path counted its request once, as a request, an operation and a cache hit.
        assert [(a or 0) - (b or 0) for a, b in zip(after, before, strict=True)] == [2, 2, 2]
    *_, layer_line, stack_line = access_lines.read()
    for line in (layer_line, stack_line):
        line.pop("duration_ms")
        line.pop("timestamp")
    assert layer_line == stack_line
    assert layer_line["cache"] == "hit"
    assert layer_line["request_id"] == "get-path-hit"


async def test_refusals_answer_as_the_stack_does(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    async with paths(app) as both:
        query = {"query": CUSTOMER}
        cases: dict[str, tuple[dict[str, str], dict[str, str], int]] = {
            "csrf": (query, {"Accept": "application/json"}, 400),
            "bad token": (query, {**PREFLIGHT, "Authorization": "Bearer garbage"}, 401),
            "two credentials": (
                query,
                {**PREFLIGHT, "Authorization": "Bearer x", "X-API-Key": "y"},
                400,
            ),
            "not acceptable": (query, {**PREFLIGHT, "Accept": "text/csv"}, 406),
            "mutation": ({"query": "mutation { logout }"}, PREFLIGHT, 405),
            "unknown hash": (apq_params("{ status { version } }"), PREFLIGHT, 200),
            "bad variables": ({**query, "variables": "{"}, PREFLIGHT, 400),
            "invalid document": ({"query": "{ nope }"}, PREFLIGHT, 200),
            "graphiql": ({}, {"Accept": "text/html"}, 200),
        }
        for name, (params, headers, status) in cases.items():
            through_layer, through_stack = await both.both(params, {**headers, **request_id(name)})
            assert through_layer.status_code == status, (name, through_layer.text)
            assert_same(through_layer, through_stack)


async def test_a_revoked_token_is_refused_on_a_hit_it_was_served_before(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    async with paths(app) as both:
        headers = {**await signed_in(both, "ada@example.test", "viewer"), **request_id("revoked")}
        params = {"query": CUSTOMER}
        await both.layer.get("/graphql", params=params, headers=headers)
        served, _ = await both.both(params, headers)
        assert "age" in served.headers
        assert served.headers["cache-control"] == "private, max-age=60"
        logout = await both.layer.post(
            "/graphql", json={"query": "mutation { logout }"}, headers=headers
        )
        assert logout.json() == {"data": {"logout": True}}
        through_layer, through_stack = await both.both(params, headers)
        assert through_layer.status_code == 401
        assert through_layer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert_same(through_layer, through_stack)


async def early_in_a_second() -> None:
    """Waits for the next second when this one is more than 0.3 s old: a refusal says how many
    whole seconds remain of its window, so requests compared across the two paths are sent
    early in one second, where no second's boundary falls between them."""
    if time.time() % 1 > 0.3:
        await asyncio.sleep(1 - time.time() % 1)


async def test_a_rate_limited_client_is_refused_as_by_the_stack(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(rate_limit_requests=3))
    params, headers = {"query": CUSTOMER}, {**PREFLIGHT, **request_id("limited")}
    answers: dict[str, list[httpx.Response]] = {}
    async with paths(app) as both:
        # Another client's request leaves the answer in the response cache for both.
        warm = await both.layer.get("/graphql", params=params, headers=headers)
        assert warm.status_code == 200
        await early_in_a_second()
        # One client address per path: each is counted from zero, once per request.
        for address, path, target in (
            ("10.0.0.1", "layer", both.app),
            ("10.0.0.2", "stack", both.stack_app),
        ):
            transport = httpx.ASGITransport(app=target, client=(address, 40_000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answers[path] = [
                    await client.get("/graphql", params=params, headers=headers) for _ in range(4)
                ]
    assert [r.status_code for r in answers["layer"]] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in answers["layer"]] == ["2", "1", "0", "0"]
    for through_layer, through_stack in zip(answers["layer"], answers["stack"], strict=True):
        assert_same(through_layer, through_stack)
    assert answers["layer"][-1].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


@pytest.mark.redis
async def test_an_invalidated_entry_is_not_served_by_the_get_path(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    first_app, second_app = create_app(settings), create_app(settings)
    params, headers = {"query": CUSTOMER}, PREFLIGHT
    async with paths(first_app) as first, paths(second_app):
        feed: InvalidationFeed = first_app.state.invalidation_feed
        async with asyncio.timeout(10):
            await feed.wait_for(subscriptions=1)
        await first.layer.get("/graphql", params=params, headers=headers)
        hit = await first.layer.get("/graphql", params=params, headers=headers)
        assert "age" in hit.headers
        await rename(first_app, 1, "Renamed Elsewhere")
        heard = feed.received
        await runtime_of(second_app).platform.cache.invalidate([entity_tag("customer", 1)])
        async with asyncio.timeout(10):
            await feed.wait_for(received=heard + 1)
        answered = first.answered
        fresh = await first.layer.get("/graphql", params=params, headers=headers)
        assert first.answered == answered + 1
        assert "age" not in fresh.headers
        assert fresh.json()["data"]["customer"]["name"] == "Renamed Elsewhere"


async def test_kept_requests_are_bounded_and_still_checked_per_viewer(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(prepared_request_cache_size=2, introspection_anonymous=False))
    pipeline: RequestPipeline = app.state.pipeline
    async with paths(app) as both:
        for number in range(1, 4):
            query = f'{{ customer(id: "{number}") {{ id }} }}'
            answer = await both.layer.get("/graphql", params={"query": query}, headers=PREFLIGHT)
            assert answer.status_code == 200
        assert pipeline.kept_requests == 2
        introspection = {"query": "{ __schema { queryType { name } } }"}
        analyst = await signed_in(both, "eve@example.test", "analyst")
        allowed = await both.layer.get("/graphql", params=introspection, headers=analyst)
        assert allowed.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}
        # Kept for the analyst, the same query string is still refused to an anonymous viewer.
        refused = await both.layer.get("/graphql", params=introspection, headers=PREFLIGHT)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("size", [0, 1])
async def test_a_hit_needs_no_kept_request(make_settings: SettingsFactory, size: int) -> None:
    app = create_app(make_settings(prepared_request_cache_size=size))
    pipeline: RequestPipeline = app.state.pipeline
    async with paths(app) as both:
        answers = [
            await both.layer.get("/graphql", params={"query": CUSTOMER}, headers=PREFLIGHT)
            for _ in range(2)
        ]
        assert "age" in answers[1].headers
        assert answers[0].json() == answers[1].json()
        assert pipeline.kept_requests == size


async def test_a_kept_request_keys_its_responses_per_audience(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    async with paths(app) as both:
        audiences = {
            "anonymous": PREFLIGHT,
            "viewer": await signed_in(both, "ada@example.test", "viewer"),
            "analyst": await signed_in(both, "eve@example.test", "analyst"),
            "another viewer": await signed_in(both, "bob@example.test", "viewer"),
        }
        params = {"query": CUSTOMER}
        ages: dict[str, list[bool]] = {}
        for name, headers in audiences.items():
            answers = [
                await both.layer.get("/graphql", params=params, headers=headers) for _ in range(2)
            ]
            ages[name] = ["age" in answer.headers for answer in answers]
        # Each set of roles gets its own entry; viewers with the same roles share one.
        assert ages == {
            "anonymous": [False, True],
            "viewer": [False, True],
            "analyst": [False, True],
            "another viewer": [True, True],
        }


async def test_a_kept_hit_whose_lookup_answers_nothing_is_executed(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pipeline's _kept_hit looks the response up first; a lookup that answers no
    # response (counted) continues from the execute stage, as _run_kept would.
    app = create_app(make_settings())
    pipeline: RequestPipeline = app.state.pipeline
    async with paths(app) as both:
        params = {"query": CUSTOMER}
        answers = [
            await both.layer.get("/graphql", params=params, headers=PREFLIGHT) for _ in range(3)
        ]
        assert ["age" in answer.headers for answer in answers] == [False, True, True]
        responses = pipeline._responses
        assert responses is not None
        monkeypatch.setattr(responses, "lookup_in_memory", lambda key: None)
        executed = await both.layer.get("/graphql", params=params, headers=PREFLIGHT)
        assert "age" not in executed.headers
        assert executed.json() == answers[0].json()
        monkeypatch.undo()
        again = await both.layer.get("/graphql", params=params, headers=PREFLIGHT)
        assert "age" in again.headers
        assert again.json() == answers[0].json()


async def registered_status(redis_url: str) -> str:
    """Registers the status query as a trusted document by the name ``status-v1`` and by
    its content; the content's digest."""
    status = "query Version { status { version } }"
    digest = hashlib.sha256(status.encode()).hexdigest()
    client = Redis.from_url(redis_url)
    try:
        await TrustedDocumentRegistry(client).register({"status-v1": status, digest: status})
    finally:
        await client.aclose()
    return digest


@pytest.mark.redis
async def test_only_texts_named_by_their_content_are_kept(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    digest = await registered_status(redis_url)
    app = create_app(make_settings(redis_url=redis_url))
    pipeline: RequestPipeline = app.state.pipeline
    async with paths(app) as both:
        # A name may be registered again with another text: resolved on every request.
        for _ in range(2):
            named = await both.layer.get(
                "/graphql", params={"documentId": "status-v1"}, headers=PREFLIGHT
            )
            assert named.json()["data"]["status"]["version"]
        assert pipeline.kept_requests == 0
        by_content = await both.layer.get(
            "/graphql", params={"documentId": f"sha256:{digest}"}, headers=PREFLIGHT
        )
        assert by_content.json() == named.json()
        assert pipeline.kept_requests == 1


def draining(target: ASGIApp, drain: Drain) -> ASGIApp:
    """``target`` as a draining server calls it."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        # What the server hands every request from its lifespan state while draining.
        scope["state"] = {DRAIN_STATE_KEY: drain}
        await target(scope, receive, send)

    return serve


async def test_a_draining_replica_closes_connections_as_the_stack_does(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    drain = Drain()
    drain.start()

    async with paths(app) as both:
        # Both answers then come from the response cache.
        await both.layer.get("/graphql", params={"query": CUSTOMER}, headers=PREFLIGHT)
        answers = []
        for target in (both.app, both.stack_app):
            transport = httpx.ASGITransport(app=draining(target, drain))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answers.append(
                    await client.get(
                        "/graphql",
                        params={"query": CUSTOMER},
                        headers={**PREFLIGHT, **request_id("draining")},
                    )
                )
        through_layer, through_stack = answers
        assert through_layer.headers["connection"] == "close"
        assert_same(through_layer, through_stack)


async def test_a_text_sent_with_its_hash_registers_it_on_every_request(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    app = create_app(make_settings(redis_url=redis_url))
    pipeline: RequestPipeline = app.state.pipeline
    params = {"query": CUSTOMER, **apq_params(CUSTOMER)}
    shared = APQ_KEY_PREFIX + hashlib.sha256(CUSTOMER.encode()).hexdigest()
    client = Redis.from_url(redis_url)
    try:
        async with paths(app) as both:
            first = await both.layer.get("/graphql", params=params, headers=PREFLIGHT)
            assert first.status_code == 200
            assert await client.exists(shared)
            # The shared copy expired (its TTL): the next registering request writes it again.
            await client.delete(shared)
            again = await both.layer.get("/graphql", params=params, headers=PREFLIGHT)
            assert again.json() == first.json()
            assert await client.exists(shared)
            assert pipeline.kept_requests == 0
    finally:
        await client.aclose()


async def test_a_long_query_string_is_prepared_every_time(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    pipeline: RequestPipeline = app.state.pipeline
    padded = CUSTOMER + " " * (LONGEST_KEPT_REQUEST + 1)
    async with paths(app) as both:
        for _ in range(2):
            answered = await both.layer.get("/graphql", params={"query": padded}, headers=PREFLIGHT)
            assert answered.json()["data"]["customer"]["id"]
        assert pipeline.kept_requests == 0


async def test_a_kept_request_with_a_denied_field_answers_as_the_stack_does(
    make_settings: SettingsFactory,
) -> None:
    # Anonymous viewers hold no roles: the orders are denied, the status is not. A kept
    # request makes its context only when something is denied, and is never a cache hit.
    app = create_app(make_settings(anonymous_roles=[]))
    pipeline: RequestPipeline = app.state.pipeline
    params = {"query": "query Mixed { status { version } orders(first: 1) { nodes { id } } }"}
    headers = {**PREFLIGHT, **request_id("denied")}
    async with paths(app) as both:
        answers = [await both.both(params, headers) for _ in range(2)]
        assert pipeline.kept_requests == 1
    for through_layer, through_stack in answers:
        assert_same(through_layer, through_stack)
        assert "age" not in through_layer.headers
        body = through_layer.json()
        assert body["data"]["status"]["version"]
        assert body["data"]["orders"] is None
        assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert answers[0][0].content == answers[1][0].content
