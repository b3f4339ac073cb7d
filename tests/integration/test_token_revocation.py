"""Token revocation: logout and an admin's revokeToken, across two instances sharing Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import jwt
import pytest

from dataintel.app import create_app
from dataintel.services.audit import SqlAuditService
from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService
from tests.plugins.app import SettingsFactory, serving

PASSWORD = "correct horse battery staple"
LOGIN = """
mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) {
  token } }
"""
ME = "{ me { id } }"
LOGOUT = "mutation { logout }"
REVOKE = "mutation Revoke($token: String!) { revokeToken(token: $token) }"


async def graphql(
    client: httpx.AsyncClient, query: str, bearer: str | None = None, **variables: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


class Instances:
    """Two apps over one store (and one Redis when given): two replicas of one deployment."""

    def __init__(self, first: httpx.AsyncClient, second: httpx.AsyncClient, auth: Any) -> None:
        self.first = first
        self.second = second
        self.auth: SqlAuthService = auth.services.auth
        self.audit: SqlAuditService = auth.services.audit

    async def signed_in(self, email: str, *roles: str) -> str:
        await self.auth.create_user(OPERATOR, NewUser(email, None, PASSWORD, roles))
        response = await graphql(self.first, LOGIN, email=email, password=PASSWORD)
        token: str = response.json()["data"]["login"]["token"]
        return token


async def two_instances(
    stack: AsyncExitStack, make_settings: SettingsFactory, **overrides: Any
) -> Instances:
    apps = [create_app(make_settings(**overrides)) for _ in range(2)]
    clients = [await stack.enter_async_context(serving(app)) for app in apps]
    return Instances(clients[0], clients[1], apps[0].state.runtime)


@pytest.fixture
async def replicas(make_settings: SettingsFactory, redis_url: str) -> AsyncIterator[Instances]:
    async with AsyncExitStack() as stack:
        yield await two_instances(stack, make_settings, redis_url=redis_url)


async def refused_as_revoked(client: httpx.AsyncClient, token: str) -> None:
    response = await graphql(client, ME, token)
    assert response.status_code == 401
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "The bearer token has been revoked."


@pytest.mark.redis
async def test_logout_on_one_replica_is_refused_by_the_other(replicas: Instances) -> None:
    token = await replicas.signed_in("ada@example.test", "viewer")
    other = await replicas.signed_in("grace@example.test", "viewer")
    assert (await graphql(replicas.second, ME, token)).json()["data"]["me"]["id"]

    assert (await graphql(replicas.first, LOGOUT, token)).json() == {"data": {"logout": True}}

    await refused_as_revoked(replicas.second, token)
    await refused_as_revoked(replicas.first, token)
    # Only that token: the user's other sessions and other users are untouched.
    assert (await graphql(replicas.second, ME, other)).json()["data"]["me"]["id"]
    [entry] = [e for e in await replicas.audit.latest(20) if e.action == "token.revoke"]
    token_id = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert entry.target == f"token:{token_id}"
    assert entry.details_mapping["via"] == "logout"
    assert token not in entry.details


@pytest.mark.redis
async def test_an_admin_revokes_a_token_everywhere(replicas: Instances) -> None:
    admin = await replicas.signed_in("root@example.test", "admin")
    viewer = await replicas.signed_in("ada@example.test", "viewer")

    denied = (await graphql(replicas.first, REVOKE, viewer, token=admin)).json()
    assert denied["data"] == {"revokeToken": None}
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    revoked = await graphql(replicas.second, REVOKE, admin, token=viewer)
    assert revoked.json() == {"data": {"revokeToken": True}}
    await refused_as_revoked(replicas.first, viewer)

    forged = (await graphql(replicas.second, REVOKE, admin, token="not.a.token")).json()
    assert forged["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert forged["errors"][0]["message"].startswith("Not revoked:")


async def test_without_redis_logout_holds_in_the_process(make_settings: SettingsFactory) -> None:
    async with AsyncExitStack() as stack:
        instances = await two_instances(stack, make_settings)
        token = await instances.signed_in("ada@example.test", "viewer")
        me = (await graphql(instances.second, ME, token)).json()
        assert me == {"data": {"me": {"id": me["data"]["me"]["id"]}}}
        assert (await graphql(instances.first, LOGOUT, token)).json() == {"data": {"logout": True}}
        await refused_as_revoked(instances.first, token)
        # Documented: without Redis another process does not learn of it.
        assert (await graphql(instances.second, ME, token)).json() == me


async def test_logout_needs_a_bearer_token(make_settings: SettingsFactory) -> None:
    async with AsyncExitStack() as stack:
        instances = await two_instances(stack, make_settings)
        anonymous = (await graphql(instances.first, LOGOUT)).json()
        assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        user = await instances.auth.create_user(OPERATOR, NewUser("ada@example.test"))
        key = await instances.auth.create_api_key(OPERATOR, "ci", user_id=user.id)
        response = await instances.first.post(
            "/graphql", json={"query": LOGOUT}, headers={"X-API-Key": key.secret}
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
