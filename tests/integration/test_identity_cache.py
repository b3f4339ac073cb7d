"""The bearer identity cache: two app instances over one store and one Redis.

A role change or a deactivation made through one instance is honoured by the other as soon
as the bump's pub/sub message arrives (waited on, not slept for); until then, and within the
TTL, the other instance answers a bearer request without reading the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from dataintel.app import create_app
from dataintel.services.auth import OPERATOR, NewUser
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import runtime_of
from tests.plugins.replicas import Replica as ServingReplica
from tests.plugins.replicas import two_replicas
from tests.plugins.statements import counting_statements

pytestmark = pytest.mark.redis

PASSWORD = "correct horse battery staple"
LOGIN = """
mutation Login($email: String!, $password: String!) { login(email: $email, password: $password) {
  token user { databaseId } } }
"""
ME = "{ me { id roles } }"
SET_ROLES = """
mutation Roles($id: ID!, $roles: [Role!]!) { setUserRoles(userId: $id, roles: $roles) { id } }
"""
DEACTIVATE = "mutation Off($id: ID!) { deactivateUser(userId: $id) { id } }"
STANDING_READ = "SELECT users.is_active, user_roles.role_name"
"""The statement authentication reads a bearer token's user with."""


class Replica(ServingReplica):
    """One app instance and its client."""

    async def graphql(
        self, query: str, bearer: str, **variables: Any
    ) -> tuple[httpx.Response, int]:
        """The response and how many times it read its user's standing from the store."""
        with counting_statements(runtime_of(self.app).engine) as log:
            response = await self.client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {bearer}"},
            )
        # A load answers before its Redis write lands: settled, the other replica finds it.
        await runtime_of(self.app).platform.cache.settle_loads()
        return response, sum(STANDING_READ in statement for statement in log.statements)


@pytest.fixture
async def replicas(
    make_settings: SettingsFactory, redis_url: str
) -> AsyncIterator[tuple[Replica, Replica]]:
    # A TTL far beyond the test: only the invalidation can make an instance read again.
    settings = make_settings(
        redis_url=redis_url, response_cache_enabled=False, auth_identity_cache_seconds=300
    )
    async with two_replicas(settings, Replica) as made:
        yield made


async def signed_in(replica: Replica, email: str, *roles: str) -> tuple[str, str]:
    """A new user's token and database id, signed in through ``replica``."""
    auth = runtime_of(replica.app).services.auth
    await auth.create_user(OPERATOR, NewUser(email, None, PASSWORD, roles))
    response = await replica.client.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": email, "password": PASSWORD}}
    )
    login = response.json()["data"]["login"]
    return login["token"], str(login["user"]["databaseId"])


async def roles_seen(replica: Replica, token: str) -> tuple[list[str], int]:
    response, statements = await replica.graphql(ME, token)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["me"]["roles"], statements


async def test_a_role_change_on_one_instance_is_honoured_by_the_other(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    admin, _ = await signed_in(first, "root@example.test", "admin")
    viewer, viewer_id = await signed_in(first, "ada@example.test", "viewer")
    assert await roles_seen(second, viewer) == (["VIEWER"], 1)
    # Cached: the second request of the same user reads nothing from the store.
    assert await roles_seen(second, viewer) == (["VIEWER"], 0)

    heard = second.feed.received
    changed, _ = await first.graphql(SET_ROLES, admin, id=viewer_id, roles=["ANALYST"])
    assert changed.json()["data"]["setUserRoles"]["id"]
    await second.hears(heard + 1)

    assert await roles_seen(second, viewer) == (["ANALYST"], 1)
    # The first instance finds the standing the second reloaded in Redis.
    assert await roles_seen(first, viewer) == (["ANALYST"], 0)


async def test_a_deactivation_on_one_instance_is_honoured_by_the_other(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    admin, _ = await signed_in(first, "root@example.test", "admin")
    viewer, viewer_id = await signed_in(first, "ada@example.test", "viewer")
    assert (await roles_seen(second, viewer))[0] == ["VIEWER"]

    heard = second.feed.received
    off, _ = await first.graphql(DEACTIVATE, admin, id=viewer_id)
    assert off.json()["data"]["deactivateUser"]["id"]
    await second.hears(heard + 1)

    refused, _ = await second.graphql(ME, viewer)
    assert refused.status_code == 401
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "The bearer token's user is deactivated."


async def test_a_zero_ttl_reads_the_user_on_every_request(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(
        redis_url=redis_url, response_cache_enabled=False, auth_identity_cache_seconds=0
    )
    app = create_app(settings)
    async with serving(app) as client:
        replica = Replica(app, client)
        viewer, _ = await signed_in(replica, "ada@example.test", "viewer")
        for _ in range(2):
            assert await roles_seen(replica, viewer) == (["VIEWER"], 1)
