"""POST /graphql through the GraphQL path's one ASGI layer (http/graphql_path.py).

As for a GET (test_get_path.py): each comparison sends the same POST to the same app twice,
once as a client does (the layer answers it) and once to the middleware stack below the
layer, which is how every POST was answered before. Status, body and headers (in order)
must be the same, and so must what the request counts and logs. Then the request-only
stages of a POST kept by its body (``PreparedRequest``).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message

from dataintel.app import create_app
from dataintel.gateway.pipeline import RequestPipeline
from dataintel.http import graphql_endpoint
from dataintel.http.drain import Drain
from tests.integration.test_get_path import (
    CUSTOMER,
    LOGIN,
    PREFLIGHT,
    Paths,
    assert_same,
    draining,
    early_in_a_second,
    paths,
    registered_status,
    request_id,
    signed_in,
)
from tests.plugins.app import SettingsFactory
from tests.plugins.logs import AccessLines

JSON_BODY = {"Content-Type": "application/json"}
BY_ID = "query Customer($id: ID!) { customer(id: $id) { id name } }"


def body(payload: Any) -> bytes:
    return orjson.dumps(payload)


async def both_ways(
    both: Paths, content: bytes, headers: dict[str, str], *, warm: bool = True
) -> tuple[httpx.Response, httpx.Response]:
    """The same POST through the layer, then through the stack; the layer answered one.

    Warmed first (sent once), both answers then come from the response cache alike.
    """
    if warm:
        await both.layer.post("/graphql", content=content, headers=headers)
    before = both.answered
    through_layer = await both.layer.post("/graphql", content=content, headers=headers)
    assert both.answered == before + 1
    through_stack = await both.stack.post("/graphql", content=content, headers=headers)
    assert both.answered == before + 1
    return through_layer, through_stack


def apq(text: str) -> dict[str, Any]:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def test_a_post_answers_counts_and_logs_as_the_stack_does(
    make_settings: SettingsFactory, access_lines: AccessLines
) -> None:
    app = create_app(make_settings())
    metrics = app.state.metrics

    def counted() -> tuple[float | None, ...]:
        sample = metrics.registry.get_sample_value
        return (
            sample(
                "dataintel_http_requests_total",
                {"route": "/graphql", "method": "POST", "status": "200"},
            ),
            sample(
                "dataintel_graphql_operations_total", {"operation": "Customer", "type": "query"}
            ),
        )

    async with paths(app) as both:
        content = body({"query": CUSTOMER})
        headers = {**JSON_BODY, **request_id("post")}
        await both.layer.post("/graphql", content=content, headers=headers)
        before = counted()
        through_layer, through_stack = await both_ways(both, content, headers, warm=False)
        after = counted()
        assert through_layer.status_code == 200
        assert through_layer.json()["data"]["customer"]["id"]
        assert_same(through_layer, through_stack)
        assert through_layer.headers["x-request-id"] == "get-path-post"
        assert "ratelimit-limit" in through_layer.headers
        assert [(a or 0) - (b or 0) for a, b in zip(after, before, strict=True)] == [2, 2]
    *_, layer_line, stack_line = access_lines.read()
    for line in (layer_line, stack_line):
        line.pop("duration_ms")
        line.pop("timestamp")
    assert layer_line == stack_line
    assert layer_line["method"] == "POST"
    assert layer_line["operation"] == "Customer"
    assert layer_line["request_id"] == "get-path-post"


async def test_refused_posts_answer_as_the_stack_does(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(max_body_bytes=1024))
    query = body({"query": CUSTOMER})
    cases: dict[str, tuple[bytes, dict[str, str], int]] = {
        "too large": (body({"query": CUSTOMER + " " * 1100}), JSON_BODY, 413),
        "malformed json": (b'{"query": ', JSON_BODY, 400),
        "not an object": (b'"query"', JSON_BODY, 400),
        "no query": (b"{}", JSON_BODY, 400),
        "text plain": (query, {"Content-Type": "text/plain"}, 415),
        "form encoded": (
            b"query=%7B+status+%7B+version+%7D+%7D",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
        ),
        "multipart": (
            b"--x\r\n\r\n--x--",
            {"Content-Type": "multipart/form-data; boundary=x"},
            415,
        ),
        "latin-1": (query, {"Content-Type": "application/json; charset=latin-1"}, 415),
        "no content type": (query, {}, 415),
        "not acceptable": (query, {**JSON_BODY, "Accept": "text/csv"}, 406),
        "graphql response json": (
            body({"query": "{ nope }"}),
            {**JSON_BODY, "Accept": "application/graphql-response+json"},
            400,
        ),
        "bad token": (query, {**JSON_BODY, "Authorization": "Bearer garbage"}, 401),
        "batch off": (body([{"query": CUSTOMER}]), JSON_BODY, 400),
        "unknown hash": (body({"extensions": apq("{ status { version } }")}), JSON_BODY, 200),
        "invalid document": (body({"query": "{ nope }"}), JSON_BODY, 200),
        "bad variables": (body({"query": BY_ID, "variables": {"id": []}}), JSON_BODY, 200),
        "marked as a query": (
            body({"query": "mutation { logout }"}),
            {**JSON_BODY, "X-GraphQL-Operation-Type": "query"},
            400,
        ),
    }
    async with paths(app) as both:
        for name, (content, headers, status) in cases.items():
            through_layer, through_stack = await both_ways(
                both, content, {**headers, **request_id(name)}
            )
            assert through_layer.status_code == status, (name, through_layer.text)
            assert_same(through_layer, through_stack)


async def test_variables_batches_and_mutations_answer_as_the_stack_does(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(batch_enabled=True, batch_max_size=2))
    async with paths(app) as both:
        signed = {**await signed_in(both, "ada@example.test", "viewer"), **JSON_BODY}
        cases: dict[str, tuple[bytes, dict[str, str], int]] = {
            "variables": (body({"query": BY_ID, "variables": {"id": "2"}}), JSON_BODY, 200),
            "batch": (
                body([{"query": CUSTOMER}, {"query": BY_ID, "variables": {"id": "3"}}]),
                JSON_BODY,
                200,
            ),
            "batch with a bad item": (body([{"query": CUSTOMER}, 1]), JSON_BODY, 200),
            "batch too big": (body([{"query": CUSTOMER}] * 3), JSON_BODY, 400),
            "signed in": (body({"query": CUSTOMER}), signed, 200),
            "a mutation": (
                body({"query": LOGIN, "variables": {"email": "no@example.test", "password": "x"}}),
                JSON_BODY,
                200,
            ),
        }
        for name, (content, headers, status) in cases.items():
            through_layer, through_stack = await both_ways(
                both, content, {**headers, **request_id(name)}
            )
            assert through_layer.status_code == status, (name, through_layer.text)
            assert_same(through_layer, through_stack)
        # A mutation that writes: each way signs out a user of its own.
        other = {**await signed_in(both, "bob@example.test", "viewer"), **JSON_BODY}
        logout = body({"query": "mutation { logout }"})
        headers = request_id("logout")
        through_layer = await both.layer.post(
            "/graphql", content=logout, headers={**signed, **headers}
        )
        through_stack = await both.stack.post(
            "/graphql", content=logout, headers={**other, **headers}
        )
        assert through_layer.json() == {"data": {"logout": True}}
        assert_same(through_layer, through_stack)


async def test_a_body_in_several_messages_is_read_as_by_the_stack(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(max_body_bytes=1024))

    def pieces(content: bytes) -> Any:
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(content), 16):
                yield content[start : start + 16]

        return chunks()

    async with paths(app) as both:
        headers = {**JSON_BODY, **request_id("chunks")}
        await both.layer.post("/graphql", content=body({"query": CUSTOMER}), headers=headers)
        for content, status in (
            (body({"query": CUSTOMER}), 200),
            (body({"query": CUSTOMER + " " * 1100}), 413),
        ):
            before = both.answered
            through_layer = await both.layer.post(
                "/graphql", content=pieces(content), headers=headers
            )
            assert both.answered == before + 1
            through_stack = await both.stack.post(
                "/graphql", content=pieces(content), headers=headers
            )
            assert through_layer.status_code == status
            assert_same(through_layer, through_stack)


async def test_a_client_gone_while_its_body_is_read_fails_as_in_the_stack(
    make_settings: SettingsFactory, access_lines: AccessLines
) -> None:
    app = create_app(make_settings())
    async with paths(app) as both:
        for target in (both.app, both.stack_app):
            sent: list[Message] = []
            scope: dict[str, Any] = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/graphql",
                "raw_path": b"/graphql",
                "query_string": b"",
                "root_path": "",
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", b"gone")],
                "client": ("127.0.0.1", 40_000),
                "server": ("testserver", 80),
            }
            messages: list[Message] = [
                {"type": "http.request", "body": b'{"query"', "more_body": True},
                {"type": "http.disconnect"},
            ]

            async def receive(messages: list[Message] = messages) -> Message:
                return messages.pop(0)

            async def send(message: Message, sent: list[Message] = sent) -> None:
                sent.append(message)

            with pytest.raises(ClientDisconnect):
                await target(scope, receive, send)
            # Nothing but Starlette's own 500 (outside the stack) is sent.
            assert [m.get("status") for m in sent if m["type"] == "http.response.start"] in (
                [],
                [500],
            )
    *_, layer_line, stack_line = access_lines.read()
    for line in (layer_line, stack_line):
        line.pop("duration_ms")
        line.pop("timestamp")
    assert layer_line == stack_line
    assert layer_line["status"] == 500


async def test_a_rate_limited_client_posting_is_refused_as_by_the_stack(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(rate_limit_requests=3))
    content, headers = body({"query": CUSTOMER}), {**JSON_BODY, **request_id("limited")}
    answers: dict[str, list[httpx.Response]] = {}
    async with paths(app) as both:
        # Another client's request leaves the answer in the response cache for both.
        await both.layer.post("/graphql", content=content, headers=headers)
        await early_in_a_second()
        for address, path, target in (
            ("10.0.0.1", "layer", both.app),
            ("10.0.0.2", "stack", both.stack_app),
        ):
            transport = httpx.ASGITransport(app=target, client=(address, 40_000))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answers[path] = [
                    await client.post("/graphql", content=content, headers=headers)
                    for _ in range(4)
                ]
    assert [r.status_code for r in answers["layer"]] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in answers["layer"]] == ["2", "1", "0", "0"]
    for through_layer, through_stack in zip(answers["layer"], answers["stack"], strict=True):
        assert_same(through_layer, through_stack)


async def test_a_draining_replica_closes_post_connections_as_the_stack_does(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings())
    drain = Drain()
    drain.start()

    async with paths(app) as both:
        await both.layer.post("/graphql", content=body({"query": CUSTOMER}), headers=JSON_BODY)
        answers = []
        for target in (both.app, both.stack_app):
            transport = httpx.ASGITransport(app=draining(target, drain))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answers.append(
                    await client.post(
                        "/graphql",
                        content=body({"query": CUSTOMER}),
                        headers={**JSON_BODY, **request_id("draining")},
                    )
                )
        through_layer, through_stack = answers
        assert through_layer.headers["connection"] == "close"
        assert_same(through_layer, through_stack)


async def test_head_and_other_methods_go_to_the_stack(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    async with paths(app) as both:
        before = both.answered
        headers = {**PREFLIGHT, **request_id("head")}
        put = await both.layer.put("/graphql", content=body({"query": CUSTOMER}))
        head = await both.layer.head("/graphql", params={"query": CUSTOMER}, headers=headers)
        assert both.answered == before
        assert put.status_code == 405
        # HEAD reaches the route (as GET's twin) and is read as a request with a body.
        assert head.status_code == 415
        assert_same(
            head, await both.stack.head("/graphql", params={"query": CUSTOMER}, headers=headers)
        )


def counting_json(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bodies the endpoint parses from now on."""
    parsed: list[bytes] = []

    def loads(data: bytes) -> Any:
        parsed.append(data)
        return orjson.loads(data)

    monkeypatch.setattr(
        graphql_endpoint,
        "orjson",
        SimpleNamespace(loads=loads, dumps=orjson.dumps, JSONDecodeError=orjson.JSONDecodeError),
    )
    return parsed


async def test_a_body_accepted_before_is_not_read_again(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(make_settings())
    pipeline: RequestPipeline = app.state.pipeline
    async with paths(app) as both:
        parsed = counting_json(monkeypatch)
        hashed: list[str] = []
        documents = pipeline.documents
        get = documents.get

        def counting_get(query: str, **options: Any) -> Any:
            hashed.append(query)
            return get(query, **options)

        monkeypatch.setattr(documents, "get", counting_get)
        content = body({"query": BY_ID, "variables": {"id": "2"}, "operationName": "Customer"})
        headers = {**JSON_BODY, **request_id("kept")}
        first, first_stack = await both_ways(both, content, headers)
        assert pipeline.kept_requests == 1
        second, second_stack = await both_ways(both, content, headers)
        # The first POST (each way) was read and prepared; every later one was kept.
        assert (len(parsed), len(hashed)) == (1, 1)
        for answer in (first_stack, second, second_stack):
            assert_same(first, answer)
        assert first.json()["data"]["customer"]["id"]

        # Other variables, other bytes: another request, never the kept one's answer.
        changed = body({"query": BY_ID, "variables": {"id": "3"}, "operationName": "Customer"})
        other, _ = await both_ways(both, changed, headers)
        assert other.json()["data"]["customer"] != first.json()["data"]["customer"]
        assert pipeline.kept_requests == 2
        # Kept as any operation, the same body marked as a query is checked again.
        mutation = body({"query": "mutation { logout }"})
        await both.layer.post("/graphql", content=mutation, headers=JSON_BODY)
        kept = pipeline.kept_requests
        marked = await both.layer.post(
            "/graphql",
            content=mutation,
            headers={**JSON_BODY, "X-GraphQL-Operation-Type": "query"},
        )
        assert marked.status_code == 400
        assert "X-GraphQL-Operation-Type" in marked.json()["errors"][0]["message"]
        assert pipeline.kept_requests == kept
        # CSRF, media types and the credential are read per request, kept or not.
        refused = await both.layer.post(
            "/graphql", content=content, headers={**JSON_BODY, "Authorization": "Bearer nope"}
        )
        assert refused.status_code == 401
        not_acceptable = await both.layer.post(
            "/graphql", content=content, headers={**JSON_BODY, "Accept": "text/csv"}
        )
        assert not_acceptable.status_code == 406


async def test_refused_and_unkeepable_bodies_are_not_kept(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(
        make_settings(batch_enabled=True, prepared_request_max_bytes=200, max_body_bytes=2000)
    )
    pipeline: RequestPipeline = app.state.pipeline
    async with paths(app) as both:
        parsed = counting_json(monkeypatch)
        refused = {
            "unknown hash": body({"extensions": apq("{ status { version } }")}),
            "invalid": body({"query": "{ nope }"}),
            "unknown operation": body({"query": CUSTOMER, "operationName": "Nope"}),
            "unreadable": body({"query": CUSTOMER, "variables": "{"}),
        }
        for name, content in refused.items():
            for _ in range(2):
                answer = await both.layer.post("/graphql", content=content, headers=JSON_BODY)
                assert answer.json()["errors"], name
        assert pipeline.kept_requests == 0
        assert len(parsed) == 2 * len(refused)
        accepted = {
            "batch": body([{"query": CUSTOMER}]),
            "longer than kept": body({"query": CUSTOMER + " " * 200}),
            "registering": body({"query": CUSTOMER, "extensions": apq(CUSTOMER)}),
        }
        for name, content in accepted.items():
            for _ in range(2):
                answer = await both.layer.post("/graphql", content=content, headers=JSON_BODY)
                assert answer.status_code == 200, name
                assert "errors" not in answer.text, (name, answer.text)
        assert pipeline.kept_requests == 0
        # A hash-only request, once its text is registered, is named by its content: kept.
        by_hash = body({"extensions": apq(CUSTOMER)})
        for _ in range(2):
            answer = await both.layer.post("/graphql", content=by_hash, headers=JSON_BODY)
            assert answer.json()["data"]["customer"]["id"]
        assert pipeline.kept_requests == 1


@pytest.mark.redis
async def test_a_document_id_that_is_a_name_is_resolved_on_every_post(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    digest = await registered_status(redis_url)
    app = create_app(make_settings(redis_url=redis_url))
    pipeline: RequestPipeline = app.state.pipeline
    async with paths(app) as both:
        for _ in range(2):
            named = await both.layer.post(
                "/graphql", content=body({"documentId": "status-v1"}), headers=JSON_BODY
            )
            assert named.json()["data"]["status"]["version"]
        assert pipeline.kept_requests == 0
        by_content = await both.layer.post(
            "/graphql", content=body({"documentId": f"sha256:{digest}"}), headers=JSON_BODY
        )
        assert by_content.json() == named.json()
        assert pipeline.kept_requests == 1
    only = create_app(make_settings(redis_url=redis_url, trusted_documents_only=True))
    pipeline = only.state.pipeline
    async with paths(only) as both:
        for _ in range(2):
            answer = await both.layer.post(
                "/graphql", content=body({"documentId": f"sha256:{digest}"}), headers=JSON_BODY
            )
            assert answer.json() == named.json()
        assert pipeline.kept_requests == 0
