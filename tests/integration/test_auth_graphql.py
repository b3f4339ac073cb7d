"""Identity through the real app: login, the viewer, API keys, users, the audit log, the CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.cli import main
from dataintel.gateway.policy import PolicyTable
from dataintel.schema import build_graphql_schema
from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService, scopes_for
from dataintel.services.tokens import SigningSecretMissingError
from tests.plugins.app import SettingsFactory, serving

SECRET = "integration-test-secret-" + "x" * 24
PASSWORD = "correct horse battery staple"

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { token tokenType expiresAt user { id email roles } }
}
"""
ME = "{ me { id roles scopes user { databaseId email displayName isActive } } }"


@dataclass
class Gateway:
    """The app, a client of it, and its auth service for setting up users."""

    app: Starlette
    client: httpx.AsyncClient

    @property
    def auth(self) -> SqlAuthService:
        service: SqlAuthService = self.app.state.runtime.services.auth
        return service

    async def graphql(
        self,
        query: str,
        credential: str | None = None,
        headers: dict[str, str] | None = None,
        **variables: Any,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if credential is not None:
            sent["Authorization"] = f"Bearer {credential}"
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=sent
        )

    async def data(self, query: str, credential: str | None = None, **variables: Any) -> Any:
        response = await self.graphql(query, credential, **variables)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def user_with_token(self, email: str, *roles: str) -> tuple[str, str]:
        """Creates a user with a password and logs in; returns the user id and the token."""
        user = await self.auth.create_user(OPERATOR, NewUser(email, None, PASSWORD, roles))
        data = await self.data(LOGIN, email=email, password=PASSWORD)
        return str(user.id), data["login"]["token"]


@pytest.fixture
async def gateway(make_settings: SettingsFactory) -> AsyncIterator[Gateway]:
    app = create_app(make_settings(jwt_secret=SECRET))
    async with serving(app) as client:
        yield Gateway(app, client)


def assert_unauthenticated(response: httpx.Response, message: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == message
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="dataintel", error="invalid_token"')


async def test_login_returns_a_token_that_names_the_viewer(gateway: Gateway) -> None:
    user_id, token = await gateway.user_with_token("ada@example.test", "analyst")
    data = await gateway.data(ME, token)
    assert data["me"]["id"] == user_id
    assert data["me"]["roles"] == ["ANALYST"]
    assert "read:analytics" in data["me"]["scopes"]
    assert "admin:users" not in data["me"]["scopes"]
    assert data["me"]["user"] == {
        "databaseId": int(user_id),
        "email": "ada@example.test",
        "displayName": "ada",
        "isActive": True,
    }
    assert (await gateway.data(ME)) == {"me": None}


async def test_wrong_password_is_unauthenticated_on_the_field_only(gateway: Gateway) -> None:
    await gateway.user_with_token("ada@example.test")
    response = await gateway.graphql(LOGIN, email="ada@example.test", password="not the one!!")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"login": None}
    [error] = body["errors"]
    assert error["path"] == ["login"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"] == "The email or password is wrong."


def expired_token(user_id: str) -> str:
    past = datetime.now(UTC) - timedelta(hours=3)
    claims = {
        "iss": "dataintel",
        "aud": "dataintel",
        "sub": user_id,
        "iat": past,
        "exp": past + timedelta(hours=1),
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def forged_token(user_id: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "iss": "dataintel",
        "aud": "dataintel",
        "sub": user_id,
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    return jwt.encode(claims, "guessed-secret-" + "y" * 32, algorithm="HS256")


async def test_bad_credentials_get_401_and_the_server_keeps_serving(gateway: Gateway) -> None:
    user_id, token = await gateway.user_with_token("ada@example.test", "viewer")
    created = await gateway.data(
        'mutation { createApiKey(name: "laptop") { key apiKey { id } } }', token
    )
    key = created["createApiKey"]["key"]
    key_id = created["createApiKey"]["apiKey"]["id"]
    await gateway.data(f'mutation {{ revokeApiKey(id: "{key_id}") {{ state }} }}', token)

    cases = {
        forged_token(user_id): "The bearer token is not valid.",
        expired_token(user_id): "The bearer token has expired.",
        token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"): (
            "The bearer token is not valid."
        ),
        "garbage": "The bearer token is not valid.",
        key: "The API key has been revoked.",
        "di_0123456789ab_" + "z" * 43: "The API key is not valid.",
    }
    for credential, message in cases.items():
        assert_unauthenticated(await gateway.graphql(ME, credential), message)
        # Never served as anonymous, and the next good request is answered as usual.
        assert (await gateway.data(ME, token))["me"]["id"] == user_id
    assert (await gateway.data(ME)) == {"me": None}


async def test_token_of_a_deactivated_user_is_rejected(gateway: Gateway) -> None:
    admin_id, admin_token = await gateway.user_with_token("root@example.test", "admin")
    user_id, token = await gateway.user_with_token("ada@example.test")
    deactivate = f'mutation {{ deactivateUser(userId: "{user_id}") {{ isActive }} }}'
    assert (await gateway.data(deactivate, admin_token)) == {"deactivateUser": {"isActive": False}}
    assert_unauthenticated(
        await gateway.graphql(ME, token), "The bearer token's user is deactivated."
    )
    assert (await gateway.data(ME, admin_token))["me"]["id"] == admin_id


async def test_api_key_lifecycle(gateway: Gateway) -> None:
    user_id, token = await gateway.user_with_token("ada@example.test", "data_engineer")
    expires = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = await gateway.data(
        """mutation Create($expires: DateTime) {
          createApiKey(name: "nightly job", expiresAt: $expires) {
            key apiKey { id name prefix state expiresAt userId }
          }
        }""",
        token,
        expires=expires,
    )
    key = created["createApiKey"]["key"]
    record = created["createApiKey"]["apiKey"]
    assert key.startswith(record["prefix"] + "_")
    assert (record["name"], record["state"], record["userId"]) == ("nightly job", "ACTIVE", user_id)

    by_header = await gateway.client.post(
        "/graphql", json={"query": ME}, headers={"X-API-Key": key}
    )
    assert by_header.json()["data"]["me"]["id"] == user_id
    assert (await gateway.data(ME, key))["me"]["roles"] == ["DATA_ENGINEER"]

    listed = await gateway.data("{ apiKeys { totalCount nodes { id state lastUsedAt } } }", token)
    [listed_key] = listed["apiKeys"]["nodes"]
    assert listed["apiKeys"]["totalCount"] == 1
    assert listed_key["id"] == record["id"]
    assert listed_key["lastUsedAt"] is not None
    assert "key" not in listed_key

    revoked = await gateway.data(
        f'mutation {{ revokeApiKey(id: "{record["id"]}") {{ state revokedAt }} }}', token
    )
    assert revoked["revokeApiKey"]["state"] == "REVOKED"
    assert_unauthenticated(await gateway.graphql(ME, key), "The API key has been revoked.")


async def test_users_see_only_their_own_api_keys(gateway: Gateway) -> None:
    _, ada = await gateway.user_with_token("ada@example.test")
    _, bob = await gateway.user_with_token("bob@example.test")
    _, admin = await gateway.user_with_token("root@example.test", "admin")
    create = 'mutation { createApiKey(name: "mine") { apiKey { id } } }'
    ada_key = (await gateway.data(create, ada))["createApiKey"]["apiKey"]["id"]
    bob_key = (await gateway.data(create, bob))["createApiKey"]["apiKey"]["id"]
    listing = "{ apiKeys { nodes { id } } }"
    assert (await gateway.data(listing, ada))["apiKeys"]["nodes"] == [{"id": ada_key}]
    assert (await gateway.data(listing, bob))["apiKeys"]["nodes"] == [{"id": bob_key}]
    assert (await gateway.data(listing, admin))["apiKeys"]["nodes"] == [
        {"id": bob_key},
        {"id": ada_key},
    ]
    response = await gateway.graphql(f'mutation {{ revokeApiKey(id: "{bob_key}") {{ id }} }}', ada)
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_non_admins_get_forbidden_fields_and_keep_the_rest(gateway: Gateway) -> None:
    user_id, token = await gateway.user_with_token("ada@example.test", "analyst")
    response = await gateway.graphql(
        "{ me { id } users { nodes { id } } auditLog { nodes { id } } }", token
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"me": {"id": user_id}, "users": None, "auditLog": None}
    codes = {error["path"][0]: error["extensions"]["code"] for error in body["errors"]}
    assert codes == {"users": "FORBIDDEN", "auditLog": "FORBIDDEN"}

    # The policy denies before the resolver runs, at the path; without a credential the
    # answer is "sign in", not "you may not".
    anonymous = await gateway.graphql('mutation { createApiKey(name: "x") { key } }')
    assert anonymous.status_code == 200
    [error] = anonymous.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["path"] == ["createApiKey"]


async def test_admin_manages_users_and_reads_the_audit_log(gateway: Gateway) -> None:
    admin_id, admin = await gateway.user_with_token("root@example.test", "admin")
    created = await gateway.data(
        """mutation Create($input: CreateUserInput!) {
          createUser(input: $input) { id databaseId email roles isActive }
        }""",
        admin,
        input={"email": "Eve@Example.test", "password": PASSWORD, "roles": ["VIEWER"]},
    )
    eve = created["createUser"]
    assert (eve["email"], eve["roles"]) == ("eve@example.test", ["VIEWER"])
    response = await gateway.graphql(
        f"""mutation {{ setUserRoles(userId: "{eve["id"]}", roles: [ANALYST, PRIVACY_OFFICER])
          {{ roles scopes }} }}""",
        admin,
        headers={"X-Request-ID": "roles-change-1"},
    )
    assert response.json()["data"]["setUserRoles"]["roles"] == ["ANALYST", "PRIVACY_OFFICER"]

    users = await gateway.data(
        "{ users(filter: {role: [ANALYST]}) { totalCount nodes { email } } }", admin
    )
    assert users["users"] == {"totalCount": 1, "nodes": [{"email": "eve@example.test"}]}

    log = await gateway.data(
        """{ auditLog(filter: {action: ["auth.user.set_roles"]}) {
          totalCount nodes { actor target outcome requestId details prevHash entryHash }
        } }""",
        admin,
    )
    [entry] = log["auditLog"]["nodes"]
    assert entry["actor"] == f"user:{admin_id}"
    assert entry["target"] == f"user:{eve['databaseId']}"
    assert entry["outcome"] == "success"
    assert entry["requestId"] == "roles-change-1"
    assert entry["details"] == {"before": ["viewer"], "after": ["analyst", "privacy_officer"]}
    assert entry["prevHash"] is not None

    logins = await gateway.data(
        '{ auditLog(filter: {action: ["auth.login"], outcome: ["success"]}) { totalCount } }',
        admin,
    )
    assert logins["auditLog"]["totalCount"] == 1

    # The privacy officer reads the log too (read:audit) but does not manage users.
    _, officer = await gateway.user_with_token("officer@example.test", "privacy_officer")
    assert (await gateway.data("{ auditLog(first: 1) { totalCount } }", officer))["auditLog"][
        "totalCount"
    ] > 0


async def test_password_change_through_graphql(gateway: Gateway) -> None:
    _, token = await gateway.user_with_token("ada@example.test")
    new_password = "a different long pass phrase"
    changed = await gateway.data(
        """mutation Change($current: String!, $new: String!) {
          changePassword(currentPassword: $current, newPassword: $new) { email }
        }""",
        token,
        current=PASSWORD,
        new=new_password,
    )
    assert changed == {"changePassword": {"email": "ada@example.test"}}
    relogin = await gateway.data(LOGIN, email="ada@example.test", password=new_password)
    assert relogin["login"]["user"]["email"] == "ada@example.test"


async def test_identity_provider_token_via_jwks_file(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.get_algorithm_by_name("ES256").to_jwk(private_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "idp-key"}]}))
    settings = make_settings(
        jwt_secret=SECRET, jwks_path=jwks, jwks_issuer="https://idp.example.test/"
    )
    now = datetime.now(UTC)
    claims = {
        "iss": "https://idp.example.test/",
        "aud": "dataintel",
        "sub": "auth0|ada",
        "iat": now,
        "exp": now + timedelta(minutes=10),
        "roles": ["privacy_officer"],
    }
    token = jwt.encode(claims, private_key, algorithm="ES256", headers={"kid": "idp-key"})
    async with serving(create_app(settings)) as client:
        gateway = Gateway(client=client, app=Starlette())
        me = (await gateway.data(ME, token))["me"]
        assert me["id"] == "external:auth0|ada"
        assert me["roles"] == ["PRIVACY_OFFICER"]
        assert me["user"] is None
        assert "gdpr:erase" in me["scopes"]
        expired = jwt.encode(
            {**claims, "iat": now - timedelta(hours=2), "exp": now - timedelta(hours=1)},
            private_key,
            algorithm="ES256",
            headers={"kid": "idp-key"},
        )
        assert_unauthenticated(await gateway.graphql(ME, expired), "The bearer token has expired.")


async def test_production_without_a_secret_fails_at_startup(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(environment="production", jwt_secret=None))
    with pytest.raises(SigningSecretMissingError, match="DATAINTEL_JWT_SECRET is required"):
        async with serving(app):
            pass


def test_operator_bootstraps_an_admin_and_verifies_the_audit_log(seeded_sqlite_url: str) -> None:
    runner = CliRunner()
    environment = {"DATAINTEL_DATABASE_URL": seeded_sqlite_url}
    created = runner.invoke(
        main,
        ["users", "create", "--email", "root@example.test", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
        env=environment,
    )
    assert created.exit_code == 0, created.output
    assert "created user" in created.output
    assert "roles admin" in created.output
    for email in ("ada@example.test", "bob@example.test"):
        more = runner.invoke(
            main, ["users", "create", "--email", email, "--no-password"], env=environment
        )
        assert more.exit_code == 0, more.output

    intact = runner.invoke(main, ["audit", "verify"], env=environment)
    assert intact.exit_code == 0, intact.output
    assert "audit log intact: 3 entries" in intact.output

    database = seeded_sqlite_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE audit_log SET outcome = 'failure' WHERE id = 2")
    broken = runner.invoke(main, ["audit", "verify"], env=environment)
    assert broken.exit_code == 1
    assert "audit log broken at entry 2" in broken.output

    duplicate = runner.invoke(
        main, ["users", "create", "--email", "ada@example.test", "--no-password"], env=environment
    )
    assert duplicate.exit_code == 1
    assert "exists" in duplicate.output


def test_every_auth_and_audit_root_field_declares_who_may_read_it() -> None:
    policies = PolicyTable.from_schema(build_graphql_schema())
    own = {f"Query.{name}" for name in ("me", "user", "users", "apiKeys", "auditLog")} | {
        f"Mutation.{name}"
        for name in (
            "login",
            "createUser",
            "setUserRoles",
            "deactivateUser",
            "reactivateUser",
            "changePassword",
            "setUserPassword",
            "createApiKey",
            "revokeApiKey",
        )
    }
    assert own.isdisjoint(policies.undeclared_root_fields())
    viewer = (frozenset({"viewer"}), scopes_for(["viewer"]))
    officer = (frozenset({"privacy_officer"}), scopes_for(["privacy_officer"]))
    admin = (frozenset({"admin"}), scopes_for(["admin"]))
    anonymous: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())

    def readers(coordinate: str) -> list[bool]:
        policy = policies.policy(coordinate)
        assert policy is not None
        return [
            policy.allows(*who, signed_in=who is not anonymous)
            for who in (anonymous, viewer, officer, admin)
        ]

    assert readers("Query.me") == [True, True, True, True]
    assert readers("Mutation.login") == [True, True, True, True]
    assert readers("Mutation.createApiKey") == [False, True, True, True]
    assert readers("Query.users") == [False, False, False, True]
    assert readers("Mutation.setUserRoles") == [False, False, False, True]
    assert readers("Query.auditLog") == [False, False, True, True]
    assert policies.rate_limit("Mutation.login") is not None
