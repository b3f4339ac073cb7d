"""Drops on real faults, visible in ``status { drops }`` and in the metrics."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from dataintel.app import create_app
from tests.observability.test_metrics import samples, scrape, value
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import redis_paused

pytestmark = pytest.mark.redis

UPTIME = "query Uptime { status { uptimeSeconds } }"
DROPS = """{ status { drops {
  auditQueueOverflow auditWriteFailed apiKeyTouchFailed persistedQueryStoreFailed } } }"""


def apq(text: str) -> dict[str, Any]:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_an_apq_that_redis_cannot_store_is_counted(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(
        redis_url=redis_url, redis_call_timeout_seconds=0.2, redis_breaker_failures=100
    )
    async with serving(create_app(settings)) as client:
        nothing = (await client.post("/graphql", json={"query": DROPS})).json()
        assert nothing["data"]["status"]["drops"] == {
            "auditQueueOverflow": 0,
            "auditWriteFailed": 0,
            "apiKeyTouchFailed": 0,
            "persistedQueryStoreFailed": 0,
        }
        async with redis_paused(redis_url, 3000):
            registering = {"query": UPTIME, "extensions": apq(UPTIME)}
            answered = await client.post("/graphql", json=registering)
            # The request runs without Redis; only sharing the text with other replicas failed.
            assert answered.json()["data"]["status"]["uptimeSeconds"] >= 0
        after = (await client.post("/graphql", json={"query": DROPS})).json()
        assert after["data"]["status"]["drops"]["persistedQueryStoreFailed"] == 1
        exported = await scrape(client)
        assert value(exported, "dataintel_dropped_total", kind="apq_store_failed") == 1
        # Every kind is exported from zero, so that an alert can rate() it from the start.
        zero = ("dataintel_dropped_total", frozenset({("kind", "audit_queue_overflow")}))
        assert samples(exported)[zero] == 0
