"""The cost of observability on the reference query: off, metrics, metrics and tracing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.harness import Measurement, measure, running
from dataintel.settings import Settings

OFF = "observability off"


class _Sink(BaseHTTPRequestHandler):
    """Accepts OTLP exports and drops them: the bench measures the gateway, not a collector."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint on a free loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def observability_scenarios(
    url: str, body: dict[str, Any], *, requests: int, concurrency: int
) -> list[Measurement]:
    """The reference query without caches, with observability off and on."""
    base: dict[str, Any] = {
        "database_url": url,
        "log_level": "warning",
        "cache_enabled": False,
        "response_cache_enabled": False,
    }
    results = []
    with otlp_sink() as endpoint:
        scenarios: list[tuple[str, dict[str, Any]]] = [
            (OFF, {"metrics_enabled": False}),
            ("metrics", {}),
            ("metrics + tracing (default sampler)", {"otel_exporter_otlp_endpoint": endpoint}),
            (
                "metrics + tracing (every request)",
                {"otel_exporter_otlp_endpoint": endpoint, "otel_traces_sampler": "always_on"},
            ),
        ]
        for scenario, options in scenarios:
            settings = Settings(**base, **options)
            async with running(settings) as (app, client):
                results.append(
                    await measure(
                        scenario, app, client, body, requests=requests, concurrency=concurrency
                    )
                )
    return results
