"""Traces exported by OTLP/HTTP from a running server: one query's span tree, parent by parent."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.observability.otlp_receiver import attributes, otlp_receiver
from tests.plugins.server import running_gateway

QUERY = "query RecentOrders($n: Int!) { orders(first: $n) { nodes { id customer { name } } } }"
PAGE_SIZE = 3
INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN = "00f067aa0ba902b7"


def _post(
    origin: str, body: dict[str, object], headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        f"{origin}/graphql",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer, {name.lower(): value for name, value in response.headers.items()}


def _hex(raw: bytes) -> str:
    return raw.hex()


def test_one_query_exports_request_operation_loader_and_statement_spans(
    tmp_path: Path,
) -> None:
    with (
        otlp_receiver() as receiver,
        running_gateway(
            tmp_path,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_SERVICE_NAME="dataintel-under-test",
            OTEL_TRACES_SAMPLER="parentbased_always_on",
            OTEL_BSP_SCHEDULE_DELAY="100",
            # Every read reaches the store, so the tree goes all the way down.
            DATAINTEL_CACHE_ENABLED="false",
            DATAINTEL_RESPONSE_CACHE_ENABLED="false",
        ) as origin,
    ):
        traceparent = f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"
        body, headers = _post(
            origin,
            {"query": QUERY, "variables": {"n": PAGE_SIZE}, "operationName": "RecentOrders"},
            {"traceparent": traceparent, "tracestate": "vendor=value"},
        )
        assert "errors" not in body
        assert len(body["data"]["orders"]["nodes"]) == PAGE_SIZE
        version, trace_id, server_span_id, flags = headers["traceresponse"].split("-")
        assert (version, trace_id, flags) == ("00", INCOMING_TRACE, "01")

        def complete(spans: list[Span]) -> bool:
            names = {s.name for s in spans if _hex(s.trace_id) == INCOMING_TRACE}
            return "query RecentOrders" in names and any(n.startswith("SELECT") for n in names)

        spans = [s for s in receiver.wait_for(complete) if _hex(s.trace_id) == INCOMING_TRACE]
        bad, bad_headers = _post(origin, {"query": "{ nope }"}, {"traceparent": traceparent})

    assert receiver.paths
    assert all(path == "/v1/traces" for path in receiver.paths)
    assert {"service.name": "dataintel-under-test"}.items() <= receiver.resources[0].items()
    by_id = {_hex(s.span_id): s for s in spans}

    def parent(span: Span) -> Span:
        return by_id[_hex(span.parent_span_id)]

    server = by_id[server_span_id]
    assert server.kind == Span.SPAN_KIND_SERVER
    assert _hex(server.parent_span_id) == INCOMING_SPAN
    assert server.trace_state == "vendor=value"

    operation = next(s for s in spans if s.name == "query RecentOrders")
    assert parent(operation) is server
    operation_attributes = attributes(operation.attributes)
    assert operation_attributes["graphql.operation.name"] == "RecentOrders"
    assert operation_attributes["graphql.operation.type"] == "query"
    assert len(operation_attributes["graphql.document.hash"]) == 64
    assert operation_attributes["dataintel.cost"] > 0
    assert operation_attributes["dataintel.persisted"] is False

    loader = next(s for s in spans if s.name == "loader customers_by_id")
    assert parent(loader) is operation
    loader_attributes = attributes(loader.attributes)
    assert loader_attributes["dataintel.loader.name"] == "customers_by_id"
    assert 1 <= loader_attributes["dataintel.loader.batch_size"] <= PAGE_SIZE

    statements = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT and parent(s) is loader]
    assert statements, "the loader's batch ran no traced statement"
    statement = attributes(statements[0].attributes)
    assert statement["db.system"] == "sqlite"
    assert "customers" in statement["db.statement"]

    # No receive/send spans, no span per field, nothing of the query text or variables.
    assert not [s.name for s in spans if "http send" in s.name or "http receive" in s.name]
    assert len(spans) < 20
    for span in spans:
        recorded = attributes(span.attributes)
        assert not any(key.startswith("graphql.variable") for key in recorded)
        for value in recorded.values():
            assert "orders(first" not in str(value)
            assert "$n" not in str(value)

    # Every line logged inside the traced request names the trace and span; the access line
    # also the operation, its cost, the cache outcome and the duration.
    log = (tmp_path / "server.log").read_text().splitlines()
    lines = [json.loads(line) for line in log if line.startswith("{")]
    traced = [line for line in lines if line.get("trace_id") == INCOMING_TRACE]
    assert all(len(line["span_id"]) == 16 for line in traced)
    [access] = [
        line
        for line in traced
        if line["event"] == "request" and line.get("operation") == "RecentOrders"
    ]
    assert access["span_id"] == server_span_id
    assert access["cost"] == operation_attributes["dataintel.cost"]
    assert access["cache"] == "bypass"
    assert access["duration_ms"] > 0

    trace_of_error = bad["errors"][0]["extensions"]
    assert trace_of_error["traceId"] == INCOMING_TRACE
    assert trace_of_error["requestId"] == bad_headers["x-request-id"]
