"""PostgreSQL failover and outage under load, with the real server.

Terminating the gateway's backends (what a failover or a proxy restart does) must cost at
most the requests in flight at that instant and never open the store's breaker: a read on
a dead pooled connection is read again on a fresh one. A real outage (the network to the
database cut) must still open the breaker, and the gateway must recover within one reset
period after the database is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.resilience import Dependency
from dataintel.settings import Settings
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import eventually, runtime_of
from tests.plugins.store import PostgresServer
from tests.plugins.tcp_proxy import tcp_proxy

pytestmark = pytest.mark.postgres

CLIENTS = 8
# Each request reads an order, then its customer: two statements on two connections.
UNCACHED = """
query Order($id: ID!) { order(id: $id) { id status customer { id name } } }
"""
ORDERS = 1000
RESET_SECONDS = 1.0
MAX_FAILURES = 200
"""Past this the clients stop: the test has failed, and a fast-failing loop must not spin."""


def uncached(make_settings: SettingsFactory, url: str, **overrides: Any) -> Settings:
    """Every request reaches the store: no entity cache, no response cache, no rate limit."""
    return make_settings(
        database_url=url,
        cache_enabled=False,
        response_cache_enabled=False,
        rate_limit_enabled=False,
        store_breaker_reset_seconds=RESET_SECONDS,
        **overrides,
    )


async def terminate_backends(server: PostgresServer, database: str) -> int:
    """pg_terminate_backend on every connection the gateway holds to ``database``."""
    engine = server._admin_engine()
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :database AND application_name = 'dataintel'"
                ),
                {"database": database},
            )
            return len(result.all())
    finally:
        await engine.dispose()


class Load:
    """CLIENTS concurrent clients sending uncached queries until stopped; counts outcomes."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._stop = asyncio.Event()
        self.answered = 0
        self.failed: list[dict[str, Any]] = []

    async def _run(self, index: int) -> None:
        order_id = index
        while not self._stop.is_set():
            # Another order each time: nothing to reuse, every request reads the store.
            order_id = order_id % ORDERS + 1
            response = await self._client.post(
                "/graphql", json={"query": UNCACHED, "variables": {"id": str(order_id)}}
            )
            body = response.json()
            if response.status_code != 200 or body.get("errors"):
                self.failed.append(body)
                if len(self.failed) > MAX_FAILURES:
                    return
            else:
                self.answered += 1
            # A request answered without I/O (a breaker failing fast) never yields otherwise.
            await asyncio.sleep(0)

    @staticmethod
    @asynccontextmanager
    async def running(client: httpx.AsyncClient) -> AsyncIterator[Load]:
        """Starts the clients; stops them and waits for them at the end of the block."""
        load = Load(client)
        tasks = [asyncio.create_task(load._run(index)) for index in range(CLIENTS)]
        try:
            yield load
        finally:
            load._stop.set()
            await asyncio.gather(*tasks)

    async def answers_at_least(self, count: int) -> None:
        """Waits (with a deadline) until ``count`` more requests have been answered."""
        target = self.answered + count

        async def reached() -> bool:
            assert len(self.failed) <= MAX_FAILURES, self.failed[-1]
            return self.answered >= target

        await eventually(reached, deadline_seconds=30)


def store_breaker(app: Starlette) -> Dependency:
    """The running app's store dependency."""
    return runtime_of(app).platform.dependencies["store"]


async def test_terminated_backends_under_load_never_open_the_breaker(
    make_settings: SettingsFactory, seeded_postgres_url: str, postgres_server: PostgresServer
) -> None:
    database = make_url(seeded_postgres_url).database
    assert database is not None
    # One counted failure would open it: a dead connection must not count at all.
    app = create_app(uncached(make_settings, seeded_postgres_url, store_breaker_failures=1))
    async with serving(app) as client:
        store = store_breaker(app)
        async with Load.running(client) as load:
            await load.answers_at_least(50)
            for _ in range(2):
                assert await terminate_backends(postgres_server, database) > 0
                await load.answers_at_least(50)
        assert store.times_opened == 0
        assert store.state == "closed"
        # At most the requests in flight at each termination; in practice none at all.
        assert len(load.failed) <= 2 * CLIENTS, load.failed[:3]


async def test_a_real_outage_opens_the_breaker_and_recovery_takes_one_reset_period(
    make_settings: SettingsFactory, seeded_postgres_url: str, postgres_server: PostgresServer
) -> None:
    target = make_url(seeded_postgres_url)
    async with tcp_proxy(postgres_server.host, postgres_server.port) as proxy:
        through_proxy = target.set(host="127.0.0.1", port=proxy.port)
        settings = uncached(
            make_settings,
            through_proxy.render_as_string(hide_password=False),
            store_breaker_failures=3,
            database_timeout_seconds=1.0,
        )
        app = create_app(settings)
        async with serving(app) as client:
            store = store_breaker(app)
            ok = await client.post("/graphql", json={"query": UNCACHED, "variables": {"id": "1"}})
            assert "errors" not in ok.json()

            await proxy.stop()

            async def opened() -> bool:
                await client.post("/graphql", json={"query": UNCACHED, "variables": {"id": "1"}})
                return store.state == "open"

            await eventually(opened, deadline_seconds=15)
            refused = (
                await client.post("/graphql", json={"query": UNCACHED, "variables": {"id": "1"}})
            ).json()
            assert {e["extensions"]["code"] for e in refused["errors"]} == {
                "DEPENDENCY_UNAVAILABLE"
            }

            await proxy.start()

            async def recovered() -> bool:
                body = (
                    await client.post(
                        "/graphql", json={"query": UNCACHED, "variables": {"id": "1"}}
                    )
                ).json()
                return "errors" not in body and store.state == "closed"

            # One reset period, plus the time of the trial request itself.
            await eventually(recovered, deadline_seconds=RESET_SECONDS + 2.0)
