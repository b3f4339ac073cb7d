"""The usage recorder: one update per request, spread over coordinates when read or shared."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from dataintel.platform import redis_dependency
from dataintel.services.schema_usage import (
    MAX_CLIENTS_PER_COORDINATE,
    SchemaUsageRecorder,
    client_identity,
    client_name,
)
from dataintel.settings import Settings

DEPRECATED = {"Status.SENT": "Use SHIPPED.", "Order.total": "Use totalCents."}
OLD_CLIENT = frozenset({"Query.orders", "Order.total", "Status.SENT"})
NEW_CLIENT = frozenset({"Query.orders", "Order.totalCents"})


def recorder() -> SchemaUsageRecorder:
    return SchemaUsageRecorder(DEPRECATED, clock=lambda: 1_700_000_000.0)


async def test_a_deprecated_enum_value_is_counted_like_a_field() -> None:
    usage = recorder()
    usage.record(OLD_CLIENT, None, "legacy-app")
    usage.record(OLD_CLIENT, "7", None)
    usage.record(NEW_CLIENT, None, "new-app")
    found = {record.coordinate: record for record in await usage.usage(deprecated_only=True)}
    assert set(found) == {"Status.SENT", "Order.total"}
    sent = found["Status.SENT"]
    assert (sent.requests, sent.clients, sent.deprecation_reason) == (2, 2, "Use SHIPPED.")
    assert [c.client for c in sent.top_clients] == ["client:legacy-app", "user:7"]
    assert sent.last_seen is not None
    assert sent.last_seen.timestamp() == 1_700_000_000.0


async def test_all_coordinates_most_requested_first() -> None:
    usage = recorder()
    usage.record(OLD_CLIENT, None, None)
    usage.record(NEW_CLIENT, None, None)
    found = [(r.coordinate, r.requests) for r in await usage.usage(deprecated_only=False)]
    assert found[0] == ("Query.orders", 2)
    assert set(found[1:]) == {("Order.total", 1), ("Order.totalCents", 1), ("Status.SENT", 1)}


async def test_off_counts_nothing() -> None:
    usage = SchemaUsageRecorder(DEPRECATED, enabled=False)
    usage.record(OLD_CLIENT, None, None)
    assert all(record.requests == 0 for record in await usage.usage(deprecated_only=True))


async def test_clients_beyond_the_cap_count_in_the_totals_only() -> None:
    usage = recorder()
    for number in range(MAX_CLIENTS_PER_COORDINATE + 5):
        usage.record(OLD_CLIENT, str(number), None)
    usage.record(OLD_CLIENT, None, None)
    [total] = [r for r in await usage.usage(deprecated_only=True) if r.coordinate == "Order.total"]
    assert total.requests == MAX_CLIENTS_PER_COORDINATE + 6
    assert total.clients == MAX_CLIENTS_PER_COORDINATE


def test_client_names_and_identities() -> None:
    assert client_name({"apollographql-client-name": " dash "}) == "dash"
    assert client_name({"graphql-client-name": "ops"}) == "ops"
    assert client_name({"graphql-client-name": "x" * 101}) is None
    assert client_name({"graphql-client-name": "bad\u00e9"}) is None
    assert client_identity("42", "dash") == "user:42"
    assert client_identity(None, "dash") == "client:dash"
    assert client_identity(None, None) == "anonymous"


@pytest.mark.redis
async def test_counts_kept_while_redis_is_down_reach_it_later(redis_url: str) -> None:
    from tests.plugins.redis_server import free_port

    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    settings = Settings(redis_breaker_failures=100)
    usage = recorder()
    usage.connect(down, redis_dependency(settings.redis))
    usage.record(OLD_CLIENT, None, "legacy-app")
    assert await usage.flush() is False
    # This process still answers from its own counts.
    [total] = [r for r in await usage.usage(deprecated_only=True) if r.coordinate == "Order.total"]
    assert total.requests == 1
    await down.aclose()

    up = Redis.from_url(redis_url)
    usage.connect(up, redis_dependency(settings.redis))
    assert await usage.flush() is True
    fresh = recorder()
    fresh.connect(up, redis_dependency(settings.redis))
    [shared] = [r for r in await fresh.usage(deprecated_only=True) if r.coordinate == "Order.total"]
    assert shared.requests == 1
    assert [c.client for c in shared.top_clients] == ["client:legacy-app"]
    await up.aclose()
