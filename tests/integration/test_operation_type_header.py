"""`X-GraphQL-Operation-Type: query` lets the load balancer retry a POST on another replica
(deploy/nginx): the gateway holds clients to it, so a mutation never passes for a query."""

from __future__ import annotations

import httpx

from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving

MUTATION = 'mutation { login(email: "nobody@example.com", password: "wrong") { token } }'


async def test_a_query_marked_as_a_query_runs(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ status { version } }"},
        headers={"X-GraphQL-Operation-Type": "query"},
    )
    assert response.status_code == 200
    assert "errors" not in response.json()


async def test_a_mutation_marked_as_a_query_is_refused_before_it_runs(
    make_settings: SettingsFactory,
) -> None:
    async with serving(create_app(make_settings())) as client:
        marked = await client.post(
            "/graphql", json={"query": MUTATION}, headers={"X-GraphQL-Operation-Type": "query"}
        )
        assert marked.status_code == 400
        error = marked.json()["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert "X-GraphQL-Operation-Type" in error["message"]
        # Unmarked, the same mutation runs (and fails on its own terms: wrong password).
        plain = await client.post("/graphql", json={"query": MUTATION})
        assert plain.status_code == 200
        assert plain.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
