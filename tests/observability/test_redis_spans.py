"""Redis calls are traced as children of the operation, with their arguments hidden."""

from __future__ import annotations

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from dataintel.app import create_app
from tests.observability.otlp_receiver import attributes, otlp_receiver
from tests.plugins.app import SettingsFactory, serving

pytestmark = pytest.mark.redis


async def test_redis_commands_are_spans_under_the_operation(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    with otlp_receiver() as receiver:
        settings = make_settings(
            redis_url=redis_url,
            otel_exporter_otlp_endpoint=receiver.endpoint,
            otel_traces_sampler="always_on",
            response_cache_enabled=False,
        )
        async with serving(create_app(settings)) as client:
            query = "query OneCustomer { customer(id: 1) { name } }"
            answer = await client.post("/graphql", json={"query": query})
            assert "errors" not in answer.json()
        # The app's shutdown flushed the exporter.
        spans = receiver.wait_for(lambda found: any(s.name == "query OneCustomer" for s in found))

    by_id = {s.span_id: s for s in spans}
    operation = next(s for s in spans if s.name == "query OneCustomer")

    def under_operation(span: Span) -> bool:
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            if span is operation:
                return True
        return False

    redis_spans = [
        s
        for s in spans
        if s.kind == Span.SPAN_KIND_CLIENT and attributes(s.attributes).get("db.system") == "redis"
    ]
    assert redis_spans, [s.name for s in spans]
    in_request = [s for s in redis_spans if s.trace_id == operation.trace_id]
    assert in_request
    assert all(under_operation(s) for s in in_request)
    for span in redis_spans:
        statement = str(attributes(span.attributes).get("db.statement", ""))
        assert "dataintel:" not in statement
        # Command names and "?" only (a pipeline lists several commands).
        assert all(token == "?" or token.isalpha() for token in statement.split())
