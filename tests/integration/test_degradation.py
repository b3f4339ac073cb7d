"""Graceful degradation with the real parts: a store that fails or slows, a Redis that stops.

What can be served is served; what cannot is null with DEPENDENCY_UNAVAILABLE or TIMEOUT,
retryable, with retryAfter; values served from cache past their TTL are listed with their
age in extensions.cache.stale; and the breakers recover through half-open to closed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from dataintel.app import create_app
from dataintel.settings import Settings
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import (
    UnreadableStore,
    breaker_states,
    eventually,
    redis_paused,
    runtime_of,
    slow_down_store,
)
from tests.plugins.graphql import post
from tests.plugins.redis_server import RedisServer, free_port
from tests.plugins.store import PostgresServer

DASHBOARD = """
query Dashboard {
  status { version }
  featureViews { name }
  customer(id: "1") { id name }
  orders(first: 5) {
    totalCount
    nodes { id customer { id name } items { quantity product { id name } } }
  }
}
"""
UNCACHED = "{ status { version } featureViews { name } events(first: 3) { nodes { id } } }"
BREAKERS = "{ status { dependencies { name state breaker { state failures retryAfterSeconds } } } }"


def stale_paths(body: dict[str, Any]) -> dict[tuple[str | int, ...], dict[str, Any]]:
    entries = body.get("extensions", {}).get("cache", {}).get("stale", [])
    return {tuple(entry["path"]): entry for entry in entries}


async def breakers(client: httpx.AsyncClient) -> dict[str, str | None]:
    return breaker_states((await post(client, BREAKERS))["data"]["status"])


async def redis_failures(client: httpx.AsyncClient) -> dict[str, float]:
    """The app's failed Redis calls so far, by reason (error, timeout, open), from /metrics."""
    counts = {"error": 0.0, "timeout": 0.0, "open": 0.0}
    for family in text_string_to_metric_families((await client.get("/metrics")).text):
        for sample in family.samples:
            if (
                sample.name == "dataintel_dependency_failures_total"
                and sample.labels["dependency"] == "redis"
            ):
                counts[sample.labels["reason"]] += sample.value
    return counts


async def answers(probe: redis.asyncio.Redis) -> bool:
    """PING; a paused server holds it until the pause ends."""
    return bool(await probe.ping())


def sqlite_file(settings: Settings) -> Path:
    assert settings.store.sqlite_path is not None
    return settings.store.sqlite_path


def without_extensions(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "extensions"}


async def test_store_unreadable_serves_cached_reads_and_recovers(
    make_settings: SettingsFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # TTL 0: every read goes to the store while it answers, so every entry is past its TTL
    # and only stands in when the store fails.
    settings = make_settings(
        cache_ttl_seconds=0, store_breaker_failures=2, store_breaker_reset_seconds=0.3
    )
    app = create_app(settings)
    async with serving(app) as client:
        calls = slow_down_store(app)
        warm = await post(client, DASHBOARD)
        assert "errors" not in warm
        assert stale_paths(warm) == {}
        warm_calls = calls.opened
        store = UnreadableStore(app, sqlite_file(settings))
        await store.break_()

        degraded = await post(client, DASHBOARD)
        # Fewer store calls than the answer from the store took: none is retried, and once
        # the breaker opened the deeper fields came from the cache without a call.
        assert 0 < calls.opened - warm_calls < warm_calls
        assert "errors" not in degraded, degraded["errors"]
        assert degraded["data"] == warm["data"]
        stale = stale_paths(degraded)
        for path in [("customer",), ("orders",), ("orders", "totalCount")]:
            assert stale[path]["code"] == "DEPENDENCY_UNAVAILABLE"
            assert stale[path]["dependency"] == "store"
            assert stale[path]["ageSeconds"] >= 0
        assert ("orders", "nodes", 0, "customer") in stale
        assert ("orders", "nodes", 0, "items") in stale
        assert ("status",) not in stale

        partial = await post(client, UNCACHED)
        assert partial["data"]["status"]["version"]
        assert partial["data"]["featureViews"]
        assert partial["data"]["events"] is None
        [error] = partial["errors"]
        assert error["path"] == ["events"]
        assert error["extensions"]["code"] == "DEPENDENCY_UNAVAILABLE"
        assert error["extensions"]["retryable"] is True
        assert 0 < error["extensions"]["retryAfter"] <= 0.3
        assert error["extensions"]["dependency"] == "store"

        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["store"]
        assert ready.json()["checks"]["store"]["breaker"]["state"] == "open"
        assert (await breakers(client))["store"] == "OPEN"

        # create_app set up the gateway's log handler in place of pytest's: listen again.
        logging.getLogger().addHandler(caplog.handler)
        caplog.set_level(logging.INFO)
        await store.restore()

        async def recovered() -> bool:
            body = await post(client, DASHBOARD)
            return "errors" not in body and not stale_paths(body)

        await eventually(recovered)
        assert (await breakers(client))["store"] == "CLOSED"
        assert (await client.get("/readyz")).status_code == 200
    changes = [
        record.msg["state"]
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == "breaker state changed"
        and record.msg.get("dependency") == "store"
    ]
    assert changes[-2:] == ["half-open", "closed"]


async def test_a_batch_serves_what_it_holds_and_fails_the_rest(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(cache_ttl_seconds=0, store_breaker_reset_seconds=60)
    app = create_app(settings)
    async with serving(app) as client:
        await post(client, '{ a: customer(id: "1") { name } b: customer(id: "2") { name } }')
        await UnreadableStore(app, sqlite_file(settings)).break_()
        body = await post(
            client,
            '{ a: customer(id: "1") { name } b: customer(id: "2") { name }'
            ' c: customer(id: "40") { name } }',
        )
    # One loader batch of three ids: two stand in from cache, the third fails alone.
    assert body["data"]["a"]["name"]
    assert body["data"]["b"]["name"]
    assert body["data"]["c"] is None
    assert [error["path"] for error in body["errors"]] == [["c"]]
    assert set(stale_paths(body)) == {("a",), ("b",)}


async def test_hanging_store_times_out_fields_and_the_rest_answers(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(
        # A gateway that waited for the hanging store would answer 504 after this.
        request_timeout_seconds=10,
        cache_ttl_seconds=0,
        store_call_timeout_seconds=0.2,
        store_breaker_failures=3,
        store_breaker_reset_seconds=0.3,
    )
    app = create_app(settings)
    async with serving(app) as client:
        warm = await post(client, DASHBOARD)
        store = slow_down_store(app)
        store.hold()

        # Answered while every store call still hangs: they were cut off at their budget.
        slow = await post(client, DASHBOARD)
        assert store.held
        assert store.abandoned >= 1
        assert "errors" not in slow
        assert slow["data"] == warm["data"]
        codes = {entry["code"] for entry in stale_paths(slow).values()}
        assert "TIMEOUT" in codes
        assert codes <= {"TIMEOUT", "DEPENDENCY_UNAVAILABLE"}

        partial = await post(client, UNCACHED)
        assert store.held
        assert partial["data"]["featureViews"]
        assert partial["data"]["events"] is None
        assert partial["errors"][0]["extensions"]["code"] in {"TIMEOUT", "DEPENDENCY_UNAVAILABLE"}
        assert partial["errors"][0]["extensions"]["retryable"] is True
        assert (await breakers(client))["store"] == "OPEN"

        store.release()

        async def recovered() -> bool:
            body = await post(client, DASHBOARD)
            return "errors" not in body and not stale_paths(body)

        await eventually(recovered)
        assert (await breakers(client))["store"] == "CLOSED"


async def test_unreachable_postgresql(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/dataintel",
        store_breaker_failures=1,
    )
    app = create_app(settings)
    async with serving(app) as client:
        calls = slow_down_store(app)
        body = await post(
            client,
            "{ status { version } analyticsCatalog { measures { name } } featureViews { name }"
            ' customer(id: "1") { name } orders(first: 2) { nodes { id } } }',
        )
        # At most one try for each of the two fields on the store, none retried (the
        # breaker may have opened on startup's own try already, and then none at all).
        assert calls.opened <= 2
        assert body["data"]["status"]["version"]
        assert body["data"]["analyticsCatalog"]["measures"]
        assert body["data"]["featureViews"]
        assert body["data"]["customer"] is None
        assert body["data"]["orders"] is None
        codes = {error["extensions"]["code"] for error in body["errors"]}
        assert codes == {"DEPENDENCY_UNAVAILABLE"}
        assert sorted(error["path"][0] for error in body["errors"]) == ["customer", "orders"]
        assert (await client.get("/readyz")).status_code == 503
        assert (await breakers(client))["store"] == "OPEN"


@pytest.mark.postgres
async def test_dropped_postgresql_database(
    make_settings: SettingsFactory, seeded_postgres_url: str, postgres_server: PostgresServer
) -> None:
    settings = make_settings(database_url=seeded_postgres_url, cache_ttl_seconds=0)
    async with serving(create_app(settings)) as client:
        warm = await post(client, DASHBOARD)
        assert "errors" not in warm
        database = make_url(seeded_postgres_url).database
        assert database is not None
        await postgres_server.drop_database(database)

        degraded = await post(client, DASHBOARD)
        assert degraded["data"] == warm["data"]
        assert ("customer",) in stale_paths(degraded)
        partial = await post(client, UNCACHED)
        assert partial["data"]["events"] is None
        assert partial["errors"][0]["extensions"]["code"] == "DEPENDENCY_UNAVAILABLE"
        assert (await client.get("/readyz")).status_code == 503


@pytest.mark.redis
async def test_redis_stopped_and_started_again(
    make_settings: SettingsFactory, redis_url: str, redis_server: RedisServer
) -> None:
    settings = make_settings(
        redis_url=redis_url,
        # Far above a refused connection's few milliseconds, even on a busy machine.
        redis_call_timeout_seconds=5,
        redis_breaker_failures=1,
        redis_breaker_reset_seconds=0.2,
    )
    app = create_app(settings)
    async with serving(app) as client:
        warm = await post(client, DASHBOARD)
        await runtime_of(app).platform.cache.settle_loads()
        redis_server.stop()
        try:
            cached = await post(client, DASHBOARD)
            assert without_extensions(cached) == without_extensions(warm)
            # The stopped server refused at once and the open breaker answered the rest:
            # no Redis call waited out its budget.
            failures = await redis_failures(client)
            assert failures["error"] >= 1
            assert failures["timeout"] == 0
            fresh = await post(client, UNCACHED)
            assert "errors" not in fresh
            assert fresh["data"]["events"]["nodes"]
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["degraded"] == ["redis"]
            assert (await breakers(client))["redis"] == "OPEN"
        finally:
            redis_server.start()

        async def closed() -> bool:
            await post(client, DASHBOARD)
            return (await breakers(client))["redis"] == "CLOSED"

        await eventually(closed)
        assert without_extensions(await post(client, DASHBOARD)) == without_extensions(warm)
        assert (await client.get("/readyz")).json()["status"] == "ready"


@pytest.mark.redis
async def test_paused_redis_does_not_slow_the_gateway_down(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(
        redis_url=redis_url, redis_call_timeout_seconds=0.1, redis_breaker_failures=2
    )
    query = DASHBOARD.replace("status { version }", "")
    async with serving(create_app(settings)) as client:
        warm = await post(client, query)
        probe = redis.asyncio.Redis.from_url(redis_url, socket_timeout=30)
        async with redis_paused(redis_url, 5000):
            # Held by the pause until it ends: while it is pending, Redis is still paused.
            ping = asyncio.create_task(answers(probe))
            for _ in range(3):
                body = await post(client, query)
                assert not ping.done(), "answered only after Redis came back"
                assert without_extensions(body) == without_extensions(warm)
        assert await ping
        await probe.aclose()


async def test_login_and_audited_writes_while_the_store_is_down_are_retryable(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(store_breaker_failures=50)
    app = create_app(settings)
    async with serving(app) as client:
        store = UnreadableStore(app, sqlite_file(settings))
        await store.break_()
        login = await post(
            client,
            'mutation { login(email: "ada@example.test", password: "secret-secret") { token } }',
        )
        assert login["data"] == {"login": None}
        [error] = login["errors"]
        # Not a masked INTERNAL: the store is down, and a retry may succeed.
        assert error["extensions"]["code"] == "DEPENDENCY_UNAVAILABLE"
        assert error["extensions"]["retryable"] is True
        await store.restore()


async def test_bulk_work_has_its_own_budget_while_requests_keep_theirs(
    make_settings: SettingsFactory,
) -> None:
    # Materialization holds one transaction over every view: sized for requests, the
    # per-call budget would cut it off on a slow or busy store.
    settings = make_settings(
        cache_ttl_seconds=0,
        store_call_timeout_seconds=0.3,
        store_batch_timeout_seconds=60,
        store_breaker_failures=100,
    )
    app = create_app(settings)
    async with serving(app) as client:
        slow_down_store(app, 0.5)
        runtime = runtime_of(app)
        summary = await runtime.services.features.materialize()
        assert sum(summary.rows_by_view.values()) > 0
        answer = await post(client, '{ customer(id: "1") { name } }')
        assert answer["data"]["customer"] is None
        assert answer["errors"][0]["extensions"]["code"] == "TIMEOUT"


async def test_a_request_past_its_timeout_answers_504(make_settings: SettingsFactory) -> None:
    # The store's own budget is longer than the request's: only the request timeout ends it.
    settings = make_settings(
        request_timeout_seconds=0.5, store_call_timeout_seconds=60, cache_ttl_seconds=0
    )
    app = create_app(settings)
    async with serving(app) as client:
        store = slow_down_store(app)
        store.hold()
        response = await client.post(
            "/graphql", json={"query": '{ customer(id: "1") { name } }', "operationName": None}
        )
        # The store was asked, and still hangs: the request's own deadline answered.
        assert store.opened >= 1
        assert store.held
        store.release()
    assert response.status_code == 504
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["message"] == "The request did not finish within 0.5 seconds."
    assert error["extensions"]["code"] == "TIMEOUT"
    assert error["extensions"]["retryable"] is True
