"""A batch runs the request pipeline once per item: each answers, and is logged, as alone."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dataintel import __version__
from dataintel.app import create_app
from dataintel.gateway.persisted_queries import UNCACHED
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.graphql import GraphQLClient
from tests.plugins.logs import AccessLines

# The HTTP path on both stores (docs/development.md).
pytestmark = pytest.mark.both_stores

STATUS = "query Version { status { version } }"
LOGIN = "mutation SignIn($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"  # noqa: E501


def apq(text: str) -> dict[str, Any]:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


@pytest.fixture
async def batching(make_settings: SettingsFactory) -> AsyncIterator[GraphQLClient]:
    settings = make_settings(batch_enabled=True, batch_max_size=5)
    async with serving(create_app(settings)) as client:
        yield GraphQLClient(client)


async def test_the_access_log_names_each_item_of_a_batch(
    batching: GraphQLClient, access_lines: AccessLines
) -> None:
    response = await batching.batch(
        [{"query": STATUS}, {"query": "query Two { status { version } }"}, {"query": "{ nope }"}]
    )
    assert response.status_code == 200
    first, second, third = response.json()
    assert first == second == {"data": {"status": {"version": __version__}}}
    assert third["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    [line] = access_lines.read()
    assert line["operation"] == ["Version", "Two", None]
    assert line["cost"] == [1, 1, None]
    assert line["status"] == 200


async def test_a_batch_mixes_persisted_ids_texts_and_mutations(batching: GraphQLClient) -> None:
    registered = await batching.send(STATUS, extensions=apq(STATUS))
    assert registered.json() == {"data": {"status": {"version": __version__}}}
    digest = hashlib.sha256(STATUS.encode()).hexdigest()
    response = await batching.batch(
        [
            {"extensions": apq(STATUS)},
            {"documentId": f"sha256:{digest}"},
            {
                "query": LOGIN,
                "variables": {"email": "nobody@example.com", "password": "wrong-password"},
            },
            {"query": "{ status { version } }"},
        ]
    )
    assert response.status_code == 200
    by_hash, by_id, login, text = response.json()
    assert by_hash == by_id == text == {"data": {"status": {"version": __version__}}}
    # A mutation runs in a batch (a POST) and fails on its own field, not the batch.
    assert login["data"] == {"login": None}
    assert login["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "cache-control" not in response.headers


async def test_an_apq_miss_keeps_the_whole_batch_out_of_caches(batching: GraphQLClient) -> None:
    response = await batching.batch(
        [{"query": STATUS}, {"extensions": apq("query Unknown { status { version } }")}]
    )
    assert response.status_code == 200
    served, missing = response.json()
    assert served == {"data": {"status": {"version": __version__}}}
    assert missing["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    # Alone, the miss answers with this header: the client's retry must not meet a cached miss.
    assert response.headers["cache-control"] == UNCACHED["Cache-Control"]


async def test_a_bad_credential_refuses_the_whole_batch(batching: GraphQLClient) -> None:
    response = await batching.batch(
        [{"query": STATUS}, {"query": STATUS}], headers={"Authorization": "Bearer not-a-token"}
    )
    assert response.status_code == 401
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert response.headers["www-authenticate"].startswith("Bearer")
