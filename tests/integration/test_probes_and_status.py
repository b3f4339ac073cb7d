"""Liveness, readiness and the status query, with and without Redis."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.redis_server import free_port

STATUS = """{ status { version uptimeSeconds startedAt
  dependencies { name kind state latencyMs detail } } }"""


async def test_liveness(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_with_the_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["store"]["state"] == "up"


@pytest.mark.redis
async def test_status_lists_redis_when_configured(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    async with serving(create_app(make_settings(redis_url=redis_url))) as client:
        response = await client.post("/graphql", json={"query": STATUS})
        status = response.json()["data"]["status"]
        kinds = {d["name"]: (d["kind"], d["state"]) for d in status["dependencies"]}
        assert kinds == {"store": ("sql", "UP"), "redis": ("redis", "UP")}
        assert all(d["latencyMs"] >= 0 for d in status["dependencies"])
        assert status["uptimeSeconds"] >= 0
        assert (await client.get("/readyz")).status_code == 200


async def test_ready_but_degraded_when_redis_is_down(make_settings: SettingsFactory) -> None:
    # The gateway serves without Redis (from its in-process cache), so it stays in rotation.
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    async with serving(create_app(settings)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert (body["status"], body["failed"], body["degraded"]) == ("degraded", [], ["redis"])
        assert body["checks"]["redis"]["required"] is False


async def test_not_ready_when_redis_is_down_and_required(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_required_for_readiness=True
    )
    async with serving(create_app(settings)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["failed"] == ["redis"]
        assert body["checks"]["store"]["state"] == "up"
        assert body["checks"]["redis"]["detail"]
        status = await client.post("/graphql", json={"query": STATUS})
        redis = next(
            d for d in status.json()["data"]["status"]["dependencies"] if d["name"] == "redis"
        )
        assert redis["state"] == "DOWN"
        assert redis["latencyMs"] is None
        # Liveness does not depend on Redis: the orchestrator must not restart the process.
        assert (await client.get("/healthz")).status_code == 200


async def test_not_ready_when_the_store_cannot_be_read(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a SQLite database" * 100)
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{corrupt}")
    async with serving(create_app(settings)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["failed"] == ["store"]
