"""Bad input through the real app: deep, wide, alias-heavy, huge, token-heavy and malformed
documents and variables get the right code and status, and the server keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving

STATUS = {"query": "{ status { version } }"}


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(max_query_length=20_000, max_body_bytes=50_000)
    async with serving(create_app(settings)) as http_client:
        yield http_client


async def refused(
    client: httpx.AsyncClient, payload: Any, status: int = 400, **headers: str
) -> list[dict[str, Any]]:
    """The errors of a refused request, after checking the server still answers.

    Asked under application/graphql-response+json, where a request error is a 4xx.
    """
    headers = {"accept": "application/graphql-response+json", **headers}
    if isinstance(payload, bytes):
        response = await client.post(
            "/graphql", content=payload, headers={"content-type": "application/json", **headers}
        )
    else:
        response = await client.post("/graphql", json=payload, headers=headers)
    assert response.status_code == status, response.text
    body = response.json()
    assert "data" not in body
    served = await client.post("/graphql", json=STATUS)
    assert served.status_code == 200
    assert served.json()["data"]["status"]["version"]
    errors: list[dict[str, Any]] = body["errors"]
    return errors


def too_complex(errors: list[dict[str, Any]], limit: str) -> dict[str, Any]:
    """The extensions of the QUERY_TOO_COMPLEX error for ``limit``."""
    found = [e["extensions"] for e in errors if e["extensions"].get("limit") == limit]
    assert len(found) == 1, errors
    extensions: dict[str, Any] = found[0]
    assert extensions["code"] == "QUERY_TOO_COMPLEX"
    assert extensions["measured"] > extensions["allowed"]
    return extensions


async def test_deep_documents_are_too_complex(client: httpx.AsyncClient) -> None:
    deep = "{ " + "orders { nodes { customer { " * 5 + "id" + " } } }" * 5 + " }"
    extensions = too_complex(await refused(client, {"query": deep}), "depth")
    assert (extensions["measured"], extensions["allowed"]) == (16, 12)
    # Deeper than the parser goes: still QUERY_TOO_COMPLEX, not a syntax error.
    abyss = "{" + " a {" * 1200 + " b" + " }" * 1201
    too_complex(await refused(client, {"query": abyss}), "depth")


async def test_wide_and_alias_heavy_documents_are_too_complex(client: httpx.AsyncClient) -> None:
    repeated = "{ status { " + " ".join(["dependencies { name }"] * 300) + " } }"
    assert too_complex(await refused(client, {"query": repeated}), "fields")["measured"] == 601
    aliased = "{ " + " ".join(f"s{i}: status {{ version }}" for i in range(40)) + " }"
    errors = await refused(client, {"query": aliased})
    assert too_complex(errors, "aliases")["measured"] == 40
    assert too_complex(errors, "rootFields")["measured"] == 40


async def test_token_heavy_and_huge_documents_are_refused(client: httpx.AsyncClient) -> None:
    # Short names: the token limit is reached before the length limit.
    tokens = "{ " + "a " * 5_000 + "}"
    assert too_complex(await refused(client, {"query": tokens}), "tokens")["allowed"] == 5_000
    huge = "{ status { version } }" + " " * 20_000
    assert too_complex(await refused(client, {"query": huge}), "length")["allowed"] == 20_000
    body = b'{"query": "{ status { version } }", "padding": "' + b"x" * 60_000 + b'"}'
    [error] = await refused(client, body, status=413)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_cost_counts_the_list_sizes_variables_ask_for(client: httpx.AsyncClient) -> None:
    query = (
        "query ($n: Int!) { customers(first: $n) { nodes {"
        " orders(first: $n) { nodes { items { product { name } } } } } } }"
    )
    small = await client.post("/graphql", json={"query": query, "variables": {"n": 2}})
    assert small.status_code == 200
    assert "errors" not in small.json()
    errors = await refused(client, {"query": query, "variables": {"n": 100}})
    extensions = too_complex(errors, "cost")
    assert extensions == {
        "code": "QUERY_TOO_COMPLEX",
        "retryable": False,
        "limit": "cost",
        "measured": 1 + 100 * (1 + (1 + 100 * (1 + 1 + 1))),
        "allowed": 10_000,
        "requestId": extensions["requestId"],
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"query": "{ status { version }"}, "Syntax Error"),
        ({"query": "{ status { nope } }"}, "Cannot query field 'nope'"),
        (b'{"query": "{ status { version } }"', "not valid JSON"),
        (b"[" * 5_000 + b"]" * 5_000, "not valid JSON"),
        ({"query": STATUS["query"], "variables": "{}"}, "'variables' parameter"),
        ({"query": "query ($n: Int!) { orders(first: $n) { totalCount } }"}, "'$n'"),
        (
            {
                "query": "query ($n: Int!) { orders(first: $n) { totalCount } }",
                "variables": {"n": {"deep": [[[[[[[["x"]]]]]]]]}},
            },
            "'$n'",
        ),
        ({"query": ""}, "empty"),
    ],
)
async def test_malformed_documents_and_variables_are_bad_user_input(
    client: httpx.AsyncClient, payload: Any, message: str
) -> None:
    errors = await refused(client, payload)
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert message in errors[0]["message"]


async def test_batches_are_refused_unless_enabled(client: httpx.AsyncClient) -> None:
    [error] = await refused(client, [STATUS, STATUS])
    assert error["message"] == "Batched requests are not enabled."


async def test_an_enabled_batch_answers_each_request_in_order(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(batch_enabled=True, batch_max_size=3, anonymous_roles=[])
    async with serving(create_app(settings)) as client:
        batch = [STATUS, {"query": "{ orders(first: 1) { totalCount } }"}, {"query": "{ nope }"}]
        response = await client.post("/graphql", json=batch)
        assert response.status_code == 200
        first, second, third = response.json()
        assert first["data"]["status"]["version"]
        assert second["data"] == {"orders": None}
        assert second["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "data" not in third
        assert third["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        [error] = await refused(client, [STATUS] * 4)
        assert error["extensions"] | {"requestId": None} == {
            "code": "QUERY_TOO_COMPLEX",
            "retryable": False,
            "limit": "batch",
            "measured": 4,
            "allowed": 3,
            "requestId": None,
        }
        [error] = await refused(client, [])
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        answers = (await client.post("/graphql", json=[STATUS, 7])).json()
        assert answers[1]["errors"][0]["message"] == "Request 1 of the batch is not a JSON object."


@pytest.fixture
async def production(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in production mode, where the schema is not open to anonymous viewers."""
    settings = make_settings(environment="production", max_query_length=20_000)
    async with serving(create_app(settings)) as http_client:
        yield http_client


async def test_directive_overloading_is_refused_while_parsing(
    production: httpx.AsyncClient,
) -> None:
    overloaded = "query { __typename " + "@aa" * 400 + " }"
    errors = await refused(production, {"query": overloaded})
    assert len(errors) == 1
    extensions = too_complex(errors, "directives")
    assert (extensions["measured"], extensions["allowed"]) == (400, 50)
    # A few directives, even unknown ones, are still answered by validation.
    few = await refused(production, {"query": "query { __typename @aa @bb }"})
    assert [e["message"] for e in few] == [
        "Unknown directive '@aa'.",
        "Unknown directive '@bb'.",
    ]


async def test_a_response_carries_at_most_max_errors(production: httpx.AsyncClient) -> None:
    unknown = "{ status { " + " ".join(f"field{index}" for index in range(100)) + " } }"
    errors = await refused(production, {"query": unknown})
    # graphql-core stops at the limit and says so in one more error.
    assert len(errors) == 21
    assert errors[-1]["message"].startswith("Too many validation errors")


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "{ __schema { directive { name } } }"},
        {"query": "{ statu { version } }"},
        {
            "query": "query Q($q: AnalyticsQueryInput!) { analytics(query: $q) { __typename } }",
            "variables": {"q": {"measures": ["revenue"], "time": {"granularity": "MONTHH"}}},
        },
    ],
)
async def test_production_errors_suggest_nothing(
    production: httpx.AsyncClient, client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    hidden = await production.post("/graphql", json=payload)
    text = hidden.text
    assert "errors" in hidden.json()
    assert "Did you mean" not in text
    # Outside production the same request is answered with a suggestion.
    shown = await client.post("/graphql", json=payload)
    assert "Did you mean" in shown.text
