"""The request pipeline: its stages in order, where each refusal stops, the request timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

import pytest
import strawberry

from dataintel import loop_turns
from dataintel.app import build_services
from dataintel.context import ANONYMOUS, Viewer
from dataintel.directives import PUBLIC
from dataintel.gateway.pipeline import (
    ANY_OPERATION,
    QUERIES_ONLY,
    STAGES,
    PipelineInput,
    PipelineOutcome,
    PipelineState,
    RequestPipeline,
)
from dataintel.gateway.request import DocumentRejected, GraphQLRequest
from dataintel.observability.drops import Drops
from dataintel.platform import build_platform
from dataintel.schema import compiled_schema
from dataintel.services.schema_usage import SchemaUsageRecorder
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory
from tests.plugins.graphql import pipeline_over, run

started = asyncio.Event()
never = asyncio.Event()
calls: list[str] = []


@strawberry.type(directives=[PUBLIC])
class Query:
    @strawberry.field
    def hello(self, name: str = "you") -> str:
        calls.append(name)
        return f"hello {name}"

    @strawberry.field
    async def stuck(self) -> str | None:
        started.set()
        await never.wait()
        return None


@strawberry.type(directives=[PUBLIC])
class Mutation:
    @strawberry.mutation
    def touch(self) -> bool:
        return True


class Recorder:
    """An observer that writes down what it sees."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.outcomes: list[PipelineOutcome] = []

    def around(self) -> AbstractContextManager[object]:
        return nullcontext()

    def stage_finished(self, stage: str, state: PipelineState) -> None:
        self.stages.append(stage)

    def finished(self, outcome: PipelineOutcome) -> None:
        self.outcomes.append(outcome)


@pytest.fixture
async def pipeline(make_settings: SettingsFactory) -> AsyncIterator[RequestPipeline]:
    settings = make_settings(request_timeout_seconds=0.2, max_cost=5)
    engine = create_engine(settings.store)
    platform = build_platform(settings.store, settings.redis, settings.cache, engine, None)
    services = build_services(settings, engine, None, platform, SchemaUsageRecorder({}), Drops())
    schema = compiled_schema(strawberry.Schema(query=Query, mutation=Mutation))
    built = pipeline_over(schema, settings, services)
    built.observers.append(Recorder())
    yield built
    await engine.dispose()


def recorder(pipeline: RequestPipeline) -> Recorder:
    found = pipeline.observers[-1]
    assert isinstance(found, Recorder)
    return found


async def test_a_request_passes_every_stage_in_order(pipeline: RequestPipeline) -> None:
    outcome = await run(pipeline, "query Hi { hello }")
    assert outcome.rejection is None
    assert outcome.body == {"data": {"hello": "hello you"}}
    assert (outcome.operation_name, outcome.operation_type) == ("Hi", "query")
    assert recorder(pipeline).stages == list(STAGES)
    assert recorder(pipeline).outcomes == [outcome]


async def test_a_refusal_ends_the_run_at_its_stage(pipeline: RequestPipeline) -> None:
    calls.clear()
    request = GraphQLRequest("query A { hello }", None, "B", None)
    outcome = await pipeline.run(PipelineInput(request, "r-0", viewer=ANONYMOUS))
    assert isinstance(outcome.rejection, DocumentRejected)
    assert outcome.errors[0]["message"] == "Unknown operation named 'B'."
    assert outcome.body == {"errors": outcome.errors}
    assert recorder(pipeline).stages == ["authenticate", "resolve_persisted", "prepare_document"]
    assert recorder(pipeline).outcomes == [outcome]
    assert calls == []


async def test_a_mutation_is_refused_where_the_transport_allows_queries_only(
    pipeline: RequestPipeline,
) -> None:
    request = GraphQLRequest("mutation { touch }", None, None, None)
    outcome = await pipeline.run(
        PipelineInput(request, "r-1", viewer=ANONYMOUS, allowed=QUERIES_ONLY)
    )
    assert outcome.rejection is not None
    assert (outcome.rejection.status, dict(outcome.rejection.headers)) == (405, {"Allow": "POST"})
    assert outcome.errors[0]["message"] == "A mutation cannot be sent with this method."


async def test_variables_that_do_not_coerce_are_a_request_error_and_nothing_runs(
    pipeline: RequestPipeline,
) -> None:
    calls.clear()
    outcome = await run(pipeline, "query ($n: String!) { hello(name: $n) }", n=7)
    assert isinstance(outcome.rejection, DocumentRejected)
    assert outcome.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$n" in outcome.errors[0]["message"]
    assert calls == []


async def test_a_request_past_its_timeout_answers_504(pipeline: RequestPipeline) -> None:
    started.clear()
    outcome = await run(pipeline, "query Stuck { stuck }")
    assert started.is_set()
    assert outcome.rejection is not None
    assert outcome.rejection.status == 504
    [error] = outcome.errors
    assert error["extensions"]["code"] == "TIMEOUT"
    assert error["extensions"]["retryable"] is True
    assert error["message"] == "The request did not finish within 0.2 seconds."
    assert outcome.operation_name == "Stuck"


class OutcomeRecorder(Recorder):
    """An observer of outcomes only, as the metrics are: it counts what else it is shown."""

    outcome_only = True

    def __init__(self) -> None:
        super().__init__()
        self.entered = 0

    def around(self) -> AbstractContextManager[object]:
        self.entered += 1
        return nullcontext()


async def test_a_kept_request_watched_for_outcomes_only_runs_the_same_stages(
    pipeline: RequestPipeline,
) -> None:
    query = "query Hi($name: String) { hello(name: $name) }"

    def sent(request_id: str) -> PipelineInput:
        request = GraphQLRequest(query, {"name": "ada"}, None, None)
        return PipelineInput(request, request_id, viewer=ANONYMOUS, raw_request=b"hi-ada")

    watched = [await pipeline.run(sent(f"w-{n}")) for n in range(2)]
    assert pipeline.kept_requests == 1
    assert recorder(pipeline).stages == list(STAGES) * 2
    outcomes = OutcomeRecorder()
    pipeline.observers[:] = [outcomes]
    kept = await pipeline.run(sent("k-0"))
    assert (outcomes.outcomes, outcomes.stages, outcomes.entered) == ([kept], [], 0)
    assert kept.body == {"data": {"hello": "hello ada"}}
    for outcome in watched:
        assert replace(kept, seconds=0.0) == replace(outcome, seconds=0.0)


async def test_a_body_and_a_query_string_of_the_same_bytes_are_kept_apart(
    pipeline: RequestPipeline,
) -> None:
    raw = b'{"query": "{ hello }"}'
    as_body = GraphQLRequest("{ hello }", None, None, None)
    as_query_string = GraphQLRequest('query Hi { hello(name: "qs") }', None, None, None)
    assert pipeline.kept_request(raw, QUERIES_ONLY, body=True) is None
    posted = PipelineInput(as_body, "r", viewer=ANONYMOUS, allowed=QUERIES_ONLY)
    assert (await pipeline.run(posted, raw)).rejection is None
    got = PipelineInput(
        as_query_string, "r", viewer=ANONYMOUS, allowed=QUERIES_ONLY, raw_request=raw
    )
    assert (await pipeline.run(got)).rejection is None
    assert pipeline.kept_requests == 2
    assert pipeline.kept_request(raw, QUERIES_ONLY, body=True) is as_body
    assert pipeline.kept_request(raw, QUERIES_ONLY, body=False) is as_query_string
    assert pipeline.kept_request(raw, ANY_OPERATION, body=True) is None
    assert (await pipeline.run(posted, raw)).body == {"data": {"hello": "hello you"}}
    assert (await pipeline.run(got)).body == {"data": {"hello": "hello qs"}}


async def test_executions_that_never_wait_give_the_loop_a_turn_once_their_slice_is_over(
    pipeline: RequestPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `hello` never waits: without a turn per slice the loop would run every ready request to
    # its end before it polled its sockets and took in the next connection.
    await run(pipeline, "{ hello }")
    loop = asyncio.get_running_loop()
    # Restored after the test: its hour-long slice is not left to the tests after it.
    monkeypatch.setattr(loop_turns._Slice, "ends", 0.0)

    async def turns_taken() -> int:
        turns: list[int] = []
        loop.call_soon(turns.append, 1)
        outcome = await run(pipeline, "{ hello }")
        assert outcome.body == {"data": {"hello": "hello you"}}
        return len(turns)

    monkeypatch.setattr(loop_turns, "SLICE_SECONDS", 0.0)
    assert [await turns_taken() for _ in range(3)] == [1, 1, 1]
    monkeypatch.setattr(loop_turns, "SLICE_SECONDS", 3600.0)
    # The first execution opens a slice; those after it share it, without a turn.
    assert [await turns_taken() for _ in range(3)] == [1, 0, 0]


async def test_a_kept_request_decides_again_for_another_viewer(
    make_settings: SettingsFactory,
) -> None:
    """The viewer's checks of a kept request are kept for the viewer they were decided for
    only: another viewer is checked again, and a refused one is refused every time."""
    settings = make_settings(introspection_anonymous=False)
    engine = create_engine(settings.store)
    platform = build_platform(settings.store, settings.redis, settings.cache, engine, None)
    services = build_services(settings, engine, None, platform, SchemaUsageRecorder({}), Drops())
    schema = compiled_schema(strawberry.Schema(query=Query, mutation=Mutation))
    pipeline = pipeline_over(schema, settings, services)
    signed_in = Viewer(user_id="u-1", roles=frozenset({"analyst"}))
    query = "query Types { __schema { queryType { name } } }"

    def sent(viewer: Viewer) -> PipelineInput:
        request = GraphQLRequest(query, None, None, None)
        return PipelineInput(request, "r", viewer=viewer, raw_request=b"types")

    try:
        answers = []
        for viewer in (signed_in, signed_in, ANONYMOUS, ANONYMOUS, signed_in):
            answers.append(await pipeline.run(sent(viewer)))
        assert pipeline.kept_requests == 1
        statuses = [a.rejection.status if a.rejection else 200 for a in answers]
        assert statuses == [200, 200, 403, 403, 200]
        assert answers[4].body == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        assert answers[3].document_hash == answers[0].document_hash
    finally:
        await engine.dispose()


def test_the_records_made_by_position_keep_their_field_order() -> None:
    """The hit path makes PipelineInput, GraphQLResponse and PipelineOutcome by position
    (keywords cost a dictionary per call): a field moved would silently shift the others."""
    from dataclasses import fields

    from dataintel.gateway.execution import GraphQLResponse

    assert [f.name for f in fields(PipelineInput)] == [
        "request",
        "request_id",
        "headers",
        "viewer",
        "client_address",
        "client_name",
        "allowed",
        "media_type",
        "operator_document",
        "raw_request",
    ]
    assert [f.name for f in fields(GraphQLResponse)] == [
        "data",
        "errors",
        "extensions",
        "operation_name",
        "cache_policy",
        "cached_age_seconds",
        "operation_type",
        "cost",
        "response_cache",
        "encoded_data",
    ]
    assert [f.name for f in fields(PipelineOutcome)] == [
        "response",
        "rejection",
        "errors",
        "operation_name",
        "operation_type",
        "viewer",
        "persisted_by_id",
        "persisted",
        "document_hash",
        "seconds",
    ]
