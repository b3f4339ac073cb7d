"""Two app instances over one store and one Redis: what one invalidates, neither serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from dataintel.cache import entity_tag
from dataintel.store import tables
from tests.plugins.app import SettingsFactory
from tests.plugins.faults import runtime_of
from tests.plugins.replicas import Replica as ServingReplica
from tests.plugins.replicas import two_replicas
from tests.plugins.statements import counting_statements

pytestmark = pytest.mark.redis

CUSTOMER = '{ customer(id: "1") { name features(names: ["order_count"]) { status } } }'


class Replica(ServingReplica):
    """One app instance and its client."""

    async def post(self, query: str) -> tuple[dict[str, Any], int]:
        """The response's data and the store statements it cost."""
        with counting_statements(runtime_of(self.app).engine) as log:
            response = await self.client.post("/graphql", json={"query": query})
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        await runtime_of(self.app).platform.cache.settle_loads()
        return body["data"], len(log)


@pytest.fixture
async def replicas(
    make_settings: SettingsFactory, redis_url: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    # Response caching off: this is about the data cache each response is built from.
    settings = make_settings(redis_url=redis_url, response_cache_enabled=False)
    async with two_replicas(settings, Replica) as made:
        yield made


async def rename_customer(replica: Replica, name: str) -> None:
    """A write to the store that bypasses the gateway (so nothing is invalidated yet)."""
    async with runtime_of(replica.app).engine.begin() as connection:
        await connection.execute(
            sa.update(tables.customers).where(tables.customers.c.id == 1).values(name=name)
        )


async def test_an_entity_invalidated_on_one_replica_is_reloaded_on_both(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    original, statements = await first.post(CUSTOMER)
    assert statements == 2
    # The second replica finds both reads in Redis.
    assert await second.post(CUSTOMER) == (original, 0)
    await rename_customer(first, "Renamed Customer")
    assert await first.post(CUSTOMER) == (original, 0), "served from cache until invalidated"
    heard = first.feed.received
    assert await runtime_of(second.app).platform.cache.invalidate([entity_tag("customer", 1)])
    # The first replica drops its in-process entries when the bump's message arrives.
    await first.hears(heard + 1)
    renamed, statements = await first.post(CUSTOMER)
    assert renamed["customer"]["name"] == "Renamed Customer"
    # The customer's feature values carry its tag too: both are reloaded, once.
    assert statements == 2
    assert await second.post(CUSTOMER) == (renamed, 0)


async def test_a_materialization_invalidates_feature_values_everywhere(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    before, _ = await first.post(CUSTOMER)
    await second.post(CUSTOMER)
    assert before["customer"]["features"] == [{"status": "NOT_FOUND"}]
    heard = first.feed.received
    await runtime_of(second.app).services.features.materialize()
    await first.hears(heard + 1)
    for replica in (first, second):
        after, statements = await replica.post(CUSTOMER)
        assert after["customer"]["features"] == [{"status": "PRESENT"}]
        assert statements <= 1
