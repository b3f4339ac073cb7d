"""Reading the credential off the request: which header, which scheme, which status."""

from __future__ import annotations

import httpx
import pytest

from dataintel.app import create_app
from dataintel.http.authentication import challenge
from tests.plugins.app import SettingsFactory, serving

ME = {"query": "{ me { id } }"}


async def test_no_credential_is_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json=ME)
    assert response.status_code == 200
    assert response.json() == {"data": {"me": None}}
    assert "www-authenticate" not in response.headers


async def test_unsupported_scheme_is_challenged_without_an_error_code(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/graphql", json=ME, headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="dataintel"'
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Authorization": "Bearer"}, "The credential is empty."),
        ({"Authorization": "bearer not.a.jwt"}, "The bearer token is not valid."),
        ({"X-API-Key": "not-one-of-ours"}, "The API key is not valid."),
        ({"X-API-Key": "di_0123456789ab_" + "q" * 43}, "The API key is not valid."),
    ],
)
async def test_bad_credentials_are_401_with_invalid_token(
    client: httpx.AsyncClient, headers: dict[str, str], message: str
) -> None:
    response = await client.post("/graphql", json=ME, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge("invalid_token", message)
    assert response.json()["errors"][0]["message"] == message
    follow_up = await client.post("/graphql", json=ME)
    assert follow_up.json() == {"data": {"me": None}}


async def test_bad_credential_is_rejected_over_get_too(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={"query": "{ me { id } }"},
        headers={
            "Authorization": "Bearer nope",
            "Accept": "application/json",
            # GET needs a header that forces a browser preflight (CSRF prevention).
            "Apollo-Require-Preflight": "true",
        },
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_two_credentials_are_a_bad_request(client: httpx.AsyncClient) -> None:
    headers = {"Authorization": "Bearer a.b.c", "X-API-Key": "di_x"}
    response = await client.post("/graphql", json=ME, headers=headers)
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_unreachable_identity_provider_is_503_not_401(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(jwks_url="http://127.0.0.1:9/jwks.json", jwks_timeout_seconds=1)
    # An ES256 header makes the gateway look the key up in the provider's JWKS.
    token = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    async with serving(create_app(settings)) as client:
        response = await client.post(
            "/graphql", json=ME, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "DEPENDENCY_UNAVAILABLE"
        assert error["extensions"]["retryable"] is True
        assert (await client.post("/graphql", json=ME)).status_code == 200


def test_challenge_quotes_safely() -> None:
    assert challenge() == 'Bearer realm="dataintel"'
    assert challenge("invalid_token", 'say "no"') == (
        'Bearer realm="dataintel", error="invalid_token", error_description="say \'no\'"'
    )
