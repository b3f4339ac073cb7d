"""GraphQL over HTTP: methods, media types, status codes and request errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from dataintel import __version__
from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving

STATUS_QUERY = "{ status { version } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"
# GET is a simple request for a browser: CSRF prevention wants a preflight-forcing header.
PREFLIGHT = {"Apollo-Require-Preflight": "true"}


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


async def test_post_json_answers_with_data(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": STATUS_QUERY})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    from dataintel import __version__

    assert response.json() == {"data": {"status": {"version": __version__}}}


async def test_graphql_response_json_when_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": STATUS_QUERY},
        headers={"Accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE


async def test_wildcard_accept_gets_plain_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": STATUS_QUERY}, headers={"Accept": "*/*"}
    )
    assert response.headers["content-type"] == "application/json"


async def test_get_runs_a_query(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={"query": "query Version { status { version } }", "operationName": "Version"},
        headers=PREFLIGHT,
    )
    assert response.status_code == 200
    assert "version" in response.json()["data"]["status"]


async def test_get_with_variables(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query Q($deps: Boolean!) "
            "{ status { version dependencies @include(if: $deps) { name } } }",
            "variables": json.dumps({"deps": True}),
        },
        headers=PREFLIGHT,
    )
    assert response.status_code == 200
    assert response.json()["data"]["status"]["dependencies"][0]["name"] == "store"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'"a string"', "must be a JSON object"),
        (b"{}", "'query' parameter is required"),
        (b'{"query": 42}', "'query' parameter must be a string"),
        (b'{"query": "{ status { version } }", "variables": [1]}', "'variables' parameter"),
        (b'{"query": "{ status { version } }", "operationName": 7}', "'operationName'"),
        (b'{"query": "{ status { version } }", "extensions": "x"}', "'extensions'"),
        (b'[{"query": "{ status { version } }"}]', "Batched requests are not enabled"),
    ],
)
@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_malformed_requests_are_400(
    client: httpx.AsyncClient, body: bytes, message: str, accept: str
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json", "Accept": accept}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == accept
    payload = response.json()
    assert "data" not in payload
    assert codes(payload) == ["BAD_USER_INPUT"]
    assert message in payload["errors"][0]["message"]


# A well-formed request whose document or variables fail is a GraphQL request error: the
# specification answers it 200 under application/json (legacy clients drop the errors of a
# non-2xx answer) and 400 under application/graphql-response+json.
STATUS_BY_MEDIA_TYPE = pytest.mark.parametrize(
    ("accept", "status"), [("application/json", 200), (GRAPHQL_RESPONSE, 400)]
)
TWO_OPERATIONS = "query A { status { version } } query B { status { uptimeSeconds } }"
NEEDS_VARIABLE = "query Q($on: Boolean!) { status { version @include(if: $on) } }"


@STATUS_BY_MEDIA_TYPE
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"query": "   "}, "The query is empty."),
        ({"query": "{ status { version "}, "Syntax Error: Expected Name, found <EOF>."),
        ({"query": "{ status { nope } }"}, "Cannot query field 'nope' on type 'Status'."),
        (
            {"query": NEEDS_VARIABLE, "variables": {"on": "yes"}},
            "Variable '$on' has invalid value: Boolean cannot represent a non boolean value: 'yes'",
        ),
        (
            {"query": NEEDS_VARIABLE},
            "Variable '$on' has invalid value: Expected a value of non-null type 'Boolean!'"
            " to be provided.",
        ),
        ({"query": TWO_OPERATIONS, "operationName": "C"}, "Unknown operation named 'C'."),
        (
            {"query": TWO_OPERATIONS},
            "The document holds several operations; name one in operationName.",
        ),
    ],
)
async def test_request_errors_follow_the_media_type(
    client: httpx.AsyncClient, payload: dict[str, Any], message: str, accept: str, status: int
) -> None:
    response = await client.post("/graphql", json=payload, headers={"Accept": accept})
    assert response.status_code == status
    assert response.headers["content-type"] == accept
    body = response.json()
    assert "data" not in body
    assert [error["message"] for error in body["errors"]] == [message]
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_syntax_error_has_its_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ status { version "})
    error = response.json()["errors"][0]
    assert error["locations"] == [{"line": 1, "column": 20}]


async def test_get_with_malformed_variables_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": STATUS_QUERY, "variables": "{oops"})
    assert response.status_code == 400
    assert "'variables' parameter is not valid JSON" in response.json()["errors"][0]["message"]


async def test_unknown_operation_name_lists_the_operations(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": TWO_OPERATIONS, "operationName": "C"})
    assert response.json()["errors"][0]["extensions"]["operations"] == ["A", "B"]
    named = await client.post("/graphql", json={"query": TWO_OPERATIONS, "operationName": "B"})
    assert named.status_code == 200
    assert "uptimeSeconds" in named.json()["data"]["status"]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_post_needs_json_content_type(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(
        "/graphql", content=b'{"query": "{ status { version } }"}', headers=headers
    )
    assert response.status_code == 415
    assert codes(response.json()) == ["BAD_USER_INPUT"]


async def test_json_in_another_charset_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": STATUS_QUERY}).encode("utf-16"),
        headers={"Content-Type": "application/json; charset=utf-16"},
    )
    assert response.status_code == 415
    [error] = response.json()["errors"]
    assert error["message"] == "Request bodies must be encoded in UTF-8."
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_json_with_utf8_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": STATUS_QUERY}).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"status": {"version": __version__}}}


async def test_unacceptable_accept_is_406(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": STATUS_QUERY}, headers={"Accept": "application/xml"}
    )
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/json"


async def test_other_methods_are_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", json={"query": STATUS_QUERY})
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_body_over_the_limit_is_413(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(max_body_bytes=2048))) as client:
        padding = " " * 4096
        response = await client.post("/graphql", json={"query": STATUS_QUERY + padding})
        assert response.status_code == 413
        [error] = response.json()["errors"]
        assert error["message"] == "The body is larger than 2048 bytes."
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        small = await client.post("/graphql", json={"query": STATUS_QUERY})
        assert small.status_code == 200
        assert small.json() == {"data": {"status": {"version": __version__}}}


async def test_query_over_the_length_limit_is_too_complex(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(max_query_length=100))) as client:
        response = await client.post(
            "/graphql",
            json={"query": STATUS_QUERY + " " * 200},
            headers={"Accept": GRAPHQL_RESPONSE},
        )
        assert response.status_code == 400
        assert "data" not in response.json()
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["allowed"] == 100


async def test_browser_gets_graphiql(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


async def test_browser_with_a_query_gets_the_result_not_the_page(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={"query": STATUS_QUERY},
        headers={"Accept": "text/html, */*", **PREFLIGHT},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


async def test_graphiql_off_in_production(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(environment="production"))) as client:
        response = await client.get("/graphql", headers={"Accept": "text/html"})
        assert response.status_code == 406
        # No page: a JSON error that names what may be asked for.
        assert response.headers["content-type"] == "application/json"
        [error] = response.json()["errors"]
        assert "send application/json" in error["message"]


async def test_introspection_works(client: httpx.AsyncClient) -> None:
    query = '{ __schema { queryType { name } } __type(name: "ErrorCode") { enumValues { name } } }'
    response = await client.post("/graphql", json={"query": query})
    data = response.json()["data"]
    assert data["__schema"]["queryType"]["name"] == "Query"
    names = {value["name"] for value in data["__type"]["enumValues"]}
    assert {"FORBIDDEN", "DEPENDENCY_UNAVAILABLE", "PERSISTED_QUERY_NOT_FOUND"} <= names


async def test_introspection_can_be_turned_off(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(introspection=False))) as client:
        response = await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
        assert response.status_code == 200
        assert "data" not in response.json()
        assert "introspection" in response.json()["errors"][0]["message"].lower()
        plain = await client.post("/graphql", json={"query": STATUS_QUERY})
        assert plain.status_code == 200
