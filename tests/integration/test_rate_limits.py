"""Rate limits through the real app over a real Redis: counts shared by replicas, 429 with
its headers, fields beyond @rateLimit, and what happens while Redis is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.services.audit import SqlAuditService
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import eventually
from tests.plugins.redis_server import RedisServer

pytestmark = pytest.mark.redis

STATUS = {"query": "{ status { version } }"}
LOGIN = {
    "query": "mutation ($email: String!, $password: String!) {"
    " login(email: $email, password: $password) { token } }",
    "variables": {"email": "nobody@example.com", "password": "not the password at all"},
}
LOGIN_LIMIT = 10
"""Mutation.login's @rateLimit: 10 a minute per client address."""


@asynccontextmanager
async def replica(app: Starlette, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """The app running, and a client that connects from ``address``."""
    async with serving(app), client_from(app, address) as client:
        yield client


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def code_at(body: dict[str, Any], field: str) -> str | None:
    """The error code at a root field's path, if there is one."""
    for error in body.get("errors", []):
        if error.get("path") == [field]:
            code: str = error["extensions"]["code"]
            return code
    return None


async def test_two_replicas_sharing_redis_share_the_per_client_count(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url, rate_limit_requests=5)
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(replica(create_app(settings)))
        second_app = create_app(settings)
        second = await stack.enter_async_context(replica(second_app))
        for client in (first, second, first, second, first):
            response = await client.post("/graphql", json=STATUS)
            assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "5"
        assert response.headers["RateLimit-Remaining"] == "0"
        assert response.headers["RateLimit-Policy"] == "5;w=60"

        for client in (second, first):
            refused = await client.post("/graphql", json=STATUS)
            assert refused.status_code == 429
            retry_after = int(refused.headers["Retry-After"])
            assert 1 <= retry_after <= 60
            assert refused.headers["RateLimit-Remaining"] == "0"
            assert refused.headers["RateLimit-Reset"] == str(retry_after)
            [error] = refused.json()["errors"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert error["extensions"]["retryAfter"] == retry_after
            assert error["extensions"]["requestId"] == refused.headers["X-Request-ID"]

        # The probes are never limited, and another client has its own count.
        assert (await second.get("/healthz")).status_code == 200
        assert (await second.get("/readyz")).status_code == 200
        async with client_from(second_app, "10.9.8.7") as other:
            assert (await other.post("/graphql", json=STATUS)).status_code == 200

        audit: SqlAuditService = second_app.state.runtime.services.audit

        async def refusal_audited() -> bool:
            return any(
                entry.action == "rate_limit.exceeded" and entry.target == "http:/graphql"
                for entry in await audit.latest(20)
            )

        await eventually(refusal_audited)


SCRIPTS = ("evalsha", "eval", "evalsha_ro", "eval_ro", "fcall")


async def scripts_run(redis: Redis) -> int:
    """How many Lua scripts the Redis server ran since its statistics were reset."""
    stats = await redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in SCRIPTS)


async def test_an_admitted_field_hit_is_one_redis_call_and_a_refused_one_more(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    # The per-client request limit is off: its batched counts would run scripts of their own.
    settings = make_settings(redis_url=redis_url, rate_limit_requests=0)
    redis = Redis.from_url(redis_url)
    try:
        async with replica(create_app(settings)) as client:
            for attempt in range(LOGIN_LIMIT + 1):
                await redis.config_resetstat()
                body = (await client.post("/graphql", json=LOGIN)).json()
                refused = attempt == LOGIN_LIMIT
                assert code_at(body, "login") == ("RATE_LIMITED" if refused else "UNAUTHENTICATED")
                # The window's acquire; only a refusal reads the window to say when to retry.
                scripts = await scripts_run(redis)
                if attempt == 0:
                    continue  # the first request also loads the scripts
                assert scripts >= 2 if refused else scripts == 1
    finally:
        await redis.aclose()


async def test_two_replicas_share_the_count_of_a_rate_limited_field(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(replica(create_app(settings)))
        second = await stack.enter_async_context(replica(create_app(settings)))
        for attempt in range(LOGIN_LIMIT):
            client = first if attempt % 2 else second
            body = (await client.post("/graphql", json=LOGIN)).json()
            assert code_at(body, "login") == "UNAUTHENTICATED"
        for client in (first, second):
            response = await client.post("/graphql", json=LOGIN)
            assert response.status_code == 200
            body = response.json()
            assert body["data"] == {"login": None}
            [error] = body["errors"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert 1 <= error["extensions"]["retryAfter"] <= 60
            assert error["extensions"]["field"] == "Mutation.login"
        # Nothing else is limited for this client.
        status = (await first.post("/graphql", json=STATUS)).json()
        assert status["data"]["status"]["version"]


async def test_while_redis_is_down_counts_are_kept_in_process_and_the_server_serves(
    make_settings: SettingsFactory, redis_url: str, redis_server: RedisServer
) -> None:
    settings = make_settings(
        redis_url=redis_url,
        rate_limit_requests=3,
        redis_breaker_failures=1,
        redis_breaker_reset_seconds=0.2,
    )
    app = create_app(settings)
    async with replica(app) as client:
        for _ in range(3):
            assert (await client.post("/graphql", json=STATUS)).status_code == 200
        assert (await client.post("/graphql", json=STATUS)).status_code == 429
        redis_server.stop()
        try:
            # What this replica last saw of Redis's count still holds the client back.
            assert (await client.post("/graphql", json=STATUS)).status_code == 429
            # Redis's count is out of reach: this replica counts a new client from zero, and
            # still limits.
            async with client_from(app, "10.1.2.3") as other:
                for _ in range(3):
                    response = await other.post("/graphql", json=STATUS)
                    assert response.status_code == 200
                    assert response.json()["data"]["status"]["version"]
                assert (await other.post("/graphql", json=STATUS)).status_code == 429
            assert app.state.runtime.platform.dependencies["redis"].state != "closed"
        finally:
            redis_server.start()

        async def counted_in_redis_again() -> bool:
            # The restarted Redis is empty: once it answers, the client starts afresh.
            response = await client.post("/graphql", json=STATUS)
            return response.status_code == 200

        await eventually(counted_in_redis_again)


async def test_failing_closed_refuses_limited_fields_while_redis_is_down(
    make_settings: SettingsFactory, redis_url: str, redis_server: RedisServer
) -> None:
    settings = make_settings(
        redis_url=redis_url,
        rate_limit_fail_open=False,
        redis_breaker_failures=1,
        redis_breaker_reset_seconds=0.2,
    )
    async with replica(create_app(settings)) as client:
        body = (await client.post("/graphql", json=LOGIN)).json()
        assert code_at(body, "login") == "UNAUTHENTICATED"
        redis_server.stop()
        try:
            response = await client.post("/graphql", json=LOGIN)
            assert response.status_code == 200
            body = response.json()
            assert body["data"] == {"login": None}
            [error] = body["errors"]
            assert error["extensions"]["code"] == "DEPENDENCY_UNAVAILABLE"
            assert error["extensions"]["retryable"] is True
            # Fields without a rate limit, and the per-client limit, go on as before.
            status = await client.post("/graphql", json=STATUS)
            assert status.status_code == 200
            assert status.json()["data"]["status"]["version"]
        finally:
            redis_server.start()

        async def login_counted_again() -> bool:
            body = (await client.post("/graphql", json=LOGIN)).json()
            return code_at(body, "login") == "UNAUTHENTICATED"

        await eventually(login_counted_again)
