"""With --workers 2 every scrape answers for the whole server, whichever worker serves it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.observability.test_metrics import value
from tests.plugins.server import running_gateway

REQUESTS = 24


def _open(request: urllib.request.Request | str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        body: bytes = response.read()
        return body


def test_two_workers_report_the_sum_of_both(tmp_path: Path) -> None:
    with running_gateway(tmp_path, DATAINTEL_WORKERS="2") as origin:
        for _ in range(REQUESTS):
            request = urllib.request.Request(
                f"{origin}/graphql",
                data=json.dumps({"query": "query Ping { __typename }"}).encode(),
                headers={"content-type": "application/json", "connection": "close"},
            )
            assert json.loads(_open(request)) == {"data": {"__typename": "Query"}}
        # Each scrape is a new connection, answered by either worker: all must agree.
        scrapes = [_open(f"{origin}/metrics").decode() for _ in range(6)]
    for text in scrapes:
        assert value(
            text, "dataintel_graphql_operations_total", operation="Ping", type="query"
        ) == (REQUESTS)
        assert value(text, "dataintel_breaker_state", dependency="store", state="closed") == 1
