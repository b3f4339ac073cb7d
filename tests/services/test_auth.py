"""Identity on both stores: users, roles, login, API keys, row-level rules and their audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError, ForbiddenError, NotFoundError, UnauthenticatedError
from dataintel.observability.drops import Drops
from dataintel.resilience import Dependency, DependencyPolicy
from dataintel.services.audit import AuditFilter, AuditRecord, SqlAuditService
from dataintel.services.auth import (
    ALL_SCOPES,
    OPERATOR,
    ROLE_SCOPES,
    ROLES,
    Actor,
    NewUser,
    Passwords,
    SqlAuthService,
    UserFilter,
    UserRecord,
    hash_api_key,
    scopes_for,
)
from dataintel.services.pagination import PageRequest
from dataintel.services.tokens import JsonWebKeys, TokenCodec
from dataintel.store import tables
from dataintel.store.guarded import GuardedEngine, is_store_failure
from dataintel.store.seed import ROLE_DESCRIPTIONS

PASSWORD = "correct horse battery staple"
# Cheap parameters: these tests are about the flows, not about argon2's cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def tokens() -> TokenCodec:
    return TokenCodec(
        secret=b"t" * 32,
        issuer="dataintel",
        audience="dataintel",
        lifetime=timedelta(hours=1),
        leeway=timedelta(seconds=5),
        algorithms=frozenset({"HS256"}),
    )


@pytest.fixture
def audit(store_engine: AsyncEngine) -> SqlAuditService:
    return SqlAuditService(store_engine)


@pytest.fixture
def auth(store_engine: AsyncEngine, audit: SqlAuditService) -> SqlAuthService:
    return SqlAuthService(store_engine, audit, tokens(), Passwords(FAST_HASHER))


def as_actor(user: UserRecord) -> Actor:
    return Actor(str(user.id), frozenset(user.roles), user.scopes, request_id="test-request")


async def create(auth: SqlAuthService, email: str, *roles: str) -> UserRecord:
    return await auth.create_user(OPERATOR, NewUser(email, None, PASSWORD, roles or ("viewer",)))


async def audit_entries(audit: SqlAuditService, action: str) -> list[AuditRecord]:
    page = await audit.entries(OPERATOR, AuditFilter(actions=(action,)), PageRequest(50))
    return list(page.items)


def test_every_seeded_role_has_scopes() -> None:
    assert set(ROLE_SCOPES) == set(ROLE_DESCRIPTIONS) == set(ROLES)
    assert scopes_for(["admin"]) == ALL_SCOPES
    assert scopes_for(["viewer"]) < scopes_for(["analyst"]) < scopes_for(["data_engineer"])
    assert "read:audit" in scopes_for(["privacy_officer"])
    assert "admin:users" not in scopes_for(["data_engineer", "privacy_officer"])
    assert scopes_for(["no_such_role"]) == frozenset()


async def test_operator_creates_a_user_with_roles_on_an_unseeded_store(
    auth: SqlAuthService, audit: SqlAuditService
) -> None:
    user = await create(auth, " Ada@Example.TEST ", "admin", "viewer")
    assert user.email == "ada@example.test"
    assert user.display_name == "ada"
    assert user.roles == ("viewer", "admin")
    assert user.is_active
    [entry] = await audit_entries(audit, "auth.user.create")
    assert entry.actor == "operator"
    assert entry.target == f"user:{user.id}"
    assert entry.details_mapping == {
        "email": "ada@example.test",
        "roles": ["viewer", "admin"],
        "password": True,
    }


async def test_user_input_is_checked(auth: SqlAuthService) -> None:
    await create(auth, "ada@example.test")
    with pytest.raises(BadUserInputError, match="exists"):
        await create(auth, "ADA@example.test")
    with pytest.raises(BadUserInputError, match="not an email"):
        await create(auth, "no-at-sign")
    with pytest.raises(BadUserInputError, match="Unknown roles: root"):
        await create(auth, "bob@example.test", "root")
    with pytest.raises(BadUserInputError, match="12 to 1024"):
        await auth.create_user(OPERATOR, NewUser("bob@example.test", None, "short"))


async def test_login_issues_a_token_and_is_audited(
    auth: SqlAuthService, audit: SqlAuditService
) -> None:
    user = await create(auth, "ada@example.test", "analyst")
    result = await auth.login("Ada@Example.test", PASSWORD, "login-1")
    assert result.user == user
    identity = await auth.authenticate_token(result.token)
    assert identity.user_id == str(user.id)
    assert identity.roles == frozenset({"analyst"})
    assert identity.scopes == scopes_for(["analyst"])
    assert identity.method == "token"
    [entry] = await audit_entries(audit, "auth.login")
    assert (entry.actor, entry.outcome, entry.request_id) == (
        f"user:{user.id}",
        "success",
        "login-1",
    )


async def test_failed_logins_are_audited_with_the_reason(
    auth: SqlAuthService, audit: SqlAuditService
) -> None:
    user = await create(auth, "ada@example.test")
    with pytest.raises(UnauthenticatedError, match="email or password is wrong"):
        await auth.login("ada@example.test", "wrong password!", "login-2")
    with pytest.raises(UnauthenticatedError, match="email or password is wrong"):
        await auth.login("nobody@example.test", PASSWORD, "login-3")
    await auth.set_active(OPERATOR, user.id, False)
    with pytest.raises(UnauthenticatedError, match="deactivated"):
        await auth.login("ada@example.test", PASSWORD, "login-4")
    entries = await audit_entries(audit, "auth.login")
    seen = [(e.actor, e.outcome, e.details_mapping, e.request_id) for e in reversed(entries)]
    assert seen == [
        (f"user:{user.id}", "failure", {"reason": "wrong_password"}, "login-2"),
        ("email:nobody@example.test", "failure", {"reason": "unknown_email"}, "login-3"),
        (f"user:{user.id}", "failure", {"reason": "deactivated"}, "login-4"),
    ]


async def test_deactivated_user_token_stops_working(auth: SqlAuthService) -> None:
    user = await create(auth, "ada@example.test")
    token = (await auth.login("ada@example.test", PASSWORD, None)).token
    await auth.set_active(OPERATOR, user.id, False)
    with pytest.raises(UnauthenticatedError, match="deactivated"):
        await auth.authenticate_token(token)
    await auth.set_active(OPERATOR, user.id, True)
    assert (await auth.authenticate_token(token)).user_id == str(user.id)


async def test_token_of_a_deleted_user_is_rejected(
    auth: SqlAuthService, store_engine: AsyncEngine
) -> None:
    user = await create(auth, "ada@example.test")
    token = (await auth.login("ada@example.test", PASSWORD, None)).token
    async with store_engine.begin() as connection:
        await connection.execute(sa.delete(tables.users).where(tables.users.c.id == user.id))
    with pytest.raises(UnauthenticatedError, match="does not exist"):
        await auth.authenticate_token(token)


async def test_api_key_is_shown_once_stored_hashed_and_revocable(
    auth: SqlAuthService, audit: SqlAuditService, store_engine: AsyncEngine
) -> None:
    user = await create(auth, "ada@example.test", "data_engineer")
    created = await auth.create_api_key(as_actor(user), "ci pipeline")
    assert created.secret.startswith(created.record.prefix + "_")
    async with store_engine.connect() as connection:
        stored = (await connection.execute(sa.select(tables.api_keys))).one()
    assert stored.key_hash == hash_api_key(created.secret)
    assert created.secret not in tuple(str(value) for value in stored)

    identity = await auth.authenticate_api_key(created.secret)
    assert identity.user_id == str(user.id)
    assert identity.scopes == scopes_for(["data_engineer"])
    assert identity.method == "api_key"

    revoked = await auth.revoke_api_key(as_actor(user), created.record.id)
    assert revoked.revoked_at is not None
    with pytest.raises(UnauthenticatedError, match="revoked"):
        await auth.authenticate_api_key(created.secret)
    actions = [entry.action for entry in await audit.latest(10)]
    assert actions[:2] == ["auth.api_key.revoke", "auth.api_key.create"]


async def test_wrong_or_malformed_api_keys_are_rejected(auth: SqlAuthService) -> None:
    user = await create(auth, "ada@example.test")
    created = await auth.create_api_key(as_actor(user), "laptop")
    wrong_secret = created.secret[:-4] + ("AAAA" if not created.secret.endswith("AAAA") else "BBBB")
    for key in (wrong_secret, "di_short", "di_" + "0" * 12 + "_" + "x" * 43, "di_"):
        with pytest.raises(UnauthenticatedError, match="API key is not valid"):
            await auth.authenticate_api_key(key)


async def test_expired_api_key_is_rejected(auth: SqlAuthService, store_engine: AsyncEngine) -> None:
    user = await create(auth, "ada@example.test")
    soon = datetime.now(UTC) + timedelta(hours=1)
    created = await auth.create_api_key(as_actor(user), "short-lived", soon)
    assert (await auth.authenticate_api_key(created.secret)).user_id == str(user.id)
    keys = tables.api_keys
    async with store_engine.begin() as connection:
        await connection.execute(
            sa.update(keys).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(UnauthenticatedError, match="expired"):
        await auth.authenticate_api_key(created.secret)
    with pytest.raises(BadUserInputError, match="future"):
        await auth.create_api_key(as_actor(user), "stale", datetime.now(UTC) - timedelta(days=1))


async def test_api_key_of_a_deactivated_user_is_rejected(auth: SqlAuthService) -> None:
    user = await create(auth, "ada@example.test")
    created = await auth.create_api_key(as_actor(user), "laptop")
    await auth.set_active(OPERATOR, user.id, False)
    with pytest.raises(UnauthenticatedError, match="deactivated"):
        await auth.authenticate_api_key(created.secret)


async def test_a_last_use_the_store_cannot_write_is_counted_and_the_key_still_works(
    store_engine: AsyncEngine, audit: SqlAuditService
) -> None:
    drops = Drops()
    policy = DependencyPolicy(timeout_seconds=0.3, fail_max=100, reset_timeout_seconds=1.0)
    guarded = GuardedEngine(
        store_engine, Dependency("store", "sql", policy, is_store_failure), 60.0
    )
    auth = SqlAuthService(guarded, audit, tokens(), Passwords(FAST_HASHER), drops=drops)
    user = await create(auth, "ada@example.test")
    created = await auth.create_api_key(as_actor(user), "laptop")
    async with store_engine.connect() as holder:
        # Another writer holds the key's row (PostgreSQL) or the database (SQLite): the
        # last-use write waits past its budget, as on a busy store.
        if store_engine.dialect.name == "sqlite":
            await holder.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await holder.execute(sa.select(tables.api_keys.c.id).with_for_update())
        identity = await auth.authenticate_api_key(created.secret)
        assert identity.user_id == str(user.id)
        assert drops.counts().api_key_touch_failed == 1
        await holder.rollback()


async def test_last_use_is_written_at_most_once_a_minute(
    auth: SqlAuthService, store_engine: AsyncEngine
) -> None:
    user = await create(auth, "ada@example.test")
    created = await auth.create_api_key(as_actor(user), "laptop")
    keys = tables.api_keys

    async def last_used() -> datetime | None:
        async with store_engine.connect() as connection:
            value: datetime | None = (
                await connection.execute(sa.select(keys.c.last_used_at))
            ).scalar_one()
            return value

    assert await last_used() is None
    await auth.authenticate_api_key(created.secret)
    first = await last_used()
    assert first is not None
    await auth.authenticate_api_key(created.secret)
    assert await last_used() == first
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    async with store_engine.begin() as connection:
        await connection.execute(sa.update(keys).values(last_used_at=long_ago))
    await auth.authenticate_api_key(created.secret)
    refreshed = await last_used()
    assert refreshed is not None
    assert refreshed > long_ago + timedelta(minutes=4)


async def test_users_see_only_their_own_api_keys(auth: SqlAuthService) -> None:
    admin = await create(auth, "root@example.test", "admin")
    ada = await create(auth, "ada@example.test")
    bob = await create(auth, "bob@example.test")
    ada_key = await auth.create_api_key(as_actor(ada), "ada's")
    bob_key = await auth.create_api_key(as_actor(bob), "bob's")
    admin_made = await auth.create_api_key(as_actor(admin), "for bob", user_id=bob.id)

    page = PageRequest(10)
    own = await auth.api_keys(as_actor(ada), None, page)
    assert [key.id for key in own.items] == [ada_key.record.id]
    assert (await auth.api_keys(as_actor(ada), bob.id, page)).items == []
    assert await auth.count_api_keys(as_actor(ada), None) == 1
    everyone = await auth.api_keys(as_actor(admin), None, page)
    assert {key.id for key in everyone.items} == {
        ada_key.record.id,
        bob_key.record.id,
        admin_made.record.id,
    }
    bobs = await auth.api_keys(as_actor(admin), bob.id, page)
    assert [key.name for key in bobs.items] == ["for bob", "bob's"]

    with pytest.raises(NotFoundError):
        await auth.revoke_api_key(as_actor(ada), bob_key.record.id)
    with pytest.raises(ForbiddenError):
        await auth.create_api_key(as_actor(ada), "sneaky", user_id=bob.id)
    assert (await auth.revoke_api_key(as_actor(admin), bob_key.record.id)).revoked_at is not None


async def test_external_and_anonymous_viewers_have_no_keys(auth: SqlAuthService) -> None:
    external = Actor("external:auth0|x", frozenset({"admin"}), ALL_SCOPES)
    with pytest.raises(ForbiddenError, match="users of this gateway"):
        await auth.create_api_key(external, "nope")
    with pytest.raises(UnauthenticatedError):
        await auth.api_keys(Actor(None), None, PageRequest(5))


async def test_only_admins_manage_users_and_denials_are_audited(
    auth: SqlAuthService, audit: SqlAuditService
) -> None:
    admin = await create(auth, "root@example.test", "admin")
    ada = await create(auth, "ada@example.test", "privacy_officer")
    with pytest.raises(ForbiddenError):
        await auth.set_roles(as_actor(ada), ada.id, ["admin"])
    with pytest.raises(ForbiddenError):
        await auth.users(as_actor(ada), UserFilter(), PageRequest(5))
    with pytest.raises(UnauthenticatedError):
        await auth.create_user(Actor(None), NewUser("eve@example.test"))
    [denied_roles] = await audit_entries(audit, "auth.user.set_roles")
    assert (denied_roles.actor, denied_roles.outcome) == (f"user:{ada.id}", "denied")
    denied_create = (await audit_entries(audit, "auth.user.create"))[0]
    assert (denied_create.actor, denied_create.outcome) == ("anonymous", "denied")

    assert await auth.user(as_actor(ada), admin.id) is None
    assert await auth.user(as_actor(ada), ada.id) == ada
    assert await auth.user(as_actor(admin), ada.id) == ada

    updated = await auth.set_roles(as_actor(admin), ada.id, ["analyst", "privacy_officer"])
    assert updated.roles == ("analyst", "privacy_officer")
    changed = [
        e for e in await audit_entries(audit, "auth.user.set_roles") if e.outcome == "success"
    ]
    assert changed[0].details_mapping == {
        "before": ["privacy_officer"],
        "after": ["analyst", "privacy_officer"],
    }


async def test_users_are_listed_and_filtered(auth: SqlAuthService) -> None:
    admin = await create(auth, "root@example.test", "admin")
    ada = await create(auth, "ada@example.test", "analyst")
    bob = await create(auth, "bob_smith@example.test", "viewer")
    await auth.set_active(as_actor(admin), bob.id, False)
    viewer = as_actor(admin)
    everyone = await auth.users(viewer, UserFilter(), PageRequest(2))
    assert [user.id for user in everyone.items] == [admin.id, ada.id]
    assert everyone.has_next_page
    analysts = await auth.users(viewer, UserFilter(roles=("analyst",)), PageRequest(5))
    assert [user.email for user in analysts.items] == ["ada@example.test"]
    inactive = await auth.users(viewer, UserFilter(active=False), PageRequest(5))
    assert [user.id for user in inactive.items] == [bob.id]
    # The underscore is matched literally, not as a LIKE wildcard.
    assert await auth.count_users(viewer, UserFilter(email_contains="B_S")) == 1
    assert await auth.count_users(viewer, UserFilter(email_contains="a_a")) == 0


async def test_last_active_admin_cannot_be_removed(auth: SqlAuthService) -> None:
    admin = await create(auth, "root@example.test", "admin")
    with pytest.raises(BadUserInputError, match="last active admin"):
        await auth.set_roles(as_actor(admin), admin.id, ["viewer"])
    with pytest.raises(BadUserInputError, match="last active admin"):
        await auth.set_active(as_actor(admin), admin.id, False)
    second = await create(auth, "second@example.test", "admin")
    assert (await auth.set_active(as_actor(second), admin.id, False)).is_active is False
    with pytest.raises(NotFoundError):
        await auth.set_roles(as_actor(second), 9999, ["viewer"])


async def test_login_rehashes_a_weak_hash(auth: SqlAuthService, store_engine: AsyncEngine) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    user = await create(auth, "ada@example.test")
    users = tables.users
    async with store_engine.begin() as connection:
        await connection.execute(
            sa.update(users).where(users.c.id == user.id).values(password_hash=weak.hash(PASSWORD))
        )
    await auth.login("ada@example.test", PASSWORD, None)
    async with store_engine.connect() as connection:
        stored = (await connection.execute(sa.select(users.c.password_hash))).scalar_one()
    assert not FAST_HASHER.check_needs_rehash(stored)
    assert (await auth.login("ada@example.test", PASSWORD, None)).user.id == user.id


async def test_external_identity_maps_known_roles_and_scopes(
    store_engine: AsyncEngine, audit: SqlAuditService, tmp_path: Path
) -> None:
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.get_algorithm_by_name("ES256").to_jwk(private_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "idp-1"}]}))
    keys = JsonWebKeys(
        path=jwks,
        url=None,
        algorithms=frozenset({"ES256"}),
        lifetime_seconds=60,
        timeout_seconds=1,
    )
    codec = TokenCodec(
        secret=b"t" * 32,
        issuer="dataintel",
        audience="dataintel",
        lifetime=timedelta(hours=1),
        leeway=timedelta(seconds=5),
        algorithms=frozenset({"HS256", "ES256"}),
        keys=keys,
        external_issuer="https://idp.example.test/",
    )
    auth = SqlAuthService(store_engine, audit, codec, Passwords(FAST_HASHER))
    now = datetime.now(UTC)
    claims = {
        "iss": "https://idp.example.test/",
        "aud": "dataintel",
        "sub": "auth0|ada",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "roles": ["analyst", "root"],
        "scope": "openid read:audit admin:everything",
    }
    token = jwt.encode(claims, private_key, algorithm="ES256", headers={"kid": "idp-1"})
    identity = await auth.authenticate_token(token)
    assert identity.user_id == "external:auth0|ada"
    assert identity.roles == frozenset({"analyst"})
    assert identity.scopes == scopes_for(["analyst"]) | {"read:audit"}
    assert identity.method == "external_token"


async def test_users_change_their_own_password(
    auth: SqlAuthService, audit: SqlAuditService
) -> None:
    user = await create(auth, "ada@example.test")
    new_password = "an even longer pass phrase"
    with pytest.raises(BadUserInputError, match="current password is wrong"):
        await auth.change_password(as_actor(user), "not my password", new_password)
    with pytest.raises(BadUserInputError, match="12 to 1024"):
        await auth.change_password(as_actor(user), PASSWORD, "short")
    await auth.change_password(as_actor(user), PASSWORD, new_password)
    with pytest.raises(UnauthenticatedError):
        await auth.login("ada@example.test", PASSWORD, None)
    assert (await auth.login("ada@example.test", new_password, None)).user.id == user.id
    outcomes = [entry.outcome for entry in await audit_entries(audit, "auth.password.change")]
    assert outcomes == ["success", "failure"]
    with pytest.raises(UnauthenticatedError):
        await auth.change_password(Actor(None), PASSWORD, new_password)


async def test_admins_set_passwords(auth: SqlAuthService, audit: SqlAuditService) -> None:
    admin = await create(auth, "root@example.test", "admin")
    keyless = await auth.create_user(OPERATOR, NewUser("bot@example.test"))
    with pytest.raises(ForbiddenError):
        await auth.set_password(as_actor(keyless), keyless.id, "a brand new pass phrase")
    await auth.set_password(as_actor(admin), keyless.id, "a brand new pass phrase")
    result = await auth.login("bot@example.test", "a brand new pass phrase", None)
    assert result.user.id == keyless.id
    with pytest.raises(NotFoundError):
        await auth.set_password(as_actor(admin), 9999, "a brand new pass phrase")
    entries = await audit_entries(audit, "auth.password.set")
    assert [(entry.outcome, entry.actor) for entry in entries] == [
        ("success", f"user:{admin.id}"),
        ("denied", f"user:{keyless.id}"),
    ]
