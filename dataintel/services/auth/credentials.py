"""Credentials to identities: bearer tokens, API keys, login, and signing tokens out."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import sqlalchemy as sa

from dataintel.errors import (
    BadUserInputError,
    GatewayError,
    UnauthenticatedError,
)
from dataintel.observability.drops import API_KEY_TOUCH_FAILED
from dataintel.observability.logging import get_logger
from dataintel.rbac import ALL_SCOPES, ROLE_SCOPES, ROLES, Actor, scopes_for
from dataintel.services.audit import FAILURE, SUCCESS, AuditEvent
from dataintel.services.auth.api_keys import (
    API_KEY_COLUMNS,
    API_KEY_PREFIX,
    API_KEY_SHAPE,
    API_KEY_TOUCH_INTERVAL,
    api_key_record,
    hash_api_key,
)
from dataintel.services.auth.base import AuthParts, forbidden, invalid_credential
from dataintel.services.auth.identity_cache import UserStanding
from dataintel.services.auth.passwords import MAXIMUM_PASSWORD_LENGTH
from dataintel.services.auth.records import Identity, LoginResult, audit_event
from dataintel.services.auth.users import normalize_email
from dataintel.store import tables
from dataintel.store.guarded import fetch_all

MAXIMUM_ACTOR_LENGTH = 320
_log = get_logger("dataintel.auth")


class Credentials(AuthParts):
    """Verifies credentials and signs in and out; every login and revocation is audited."""

    async def authenticate_token(self, token: str) -> Identity:
        """The identity behind a bearer JWT; UNAUTHENTICATED when it is bad or its user is not."""
        claims = await self._tokens.verify(token)
        if claims.token_id is not None and await self._revocations.is_revoked(claims.token_id):
            raise invalid_credential("The bearer token has been revoked.")
        if claims.external:
            roles = frozenset(role for role in claims.roles if role in ROLE_SCOPES)
            granted = scopes_for(roles) | (frozenset(claims.scopes) & ALL_SCOPES)
            return Identity(
                claims.subject,
                roles,
                granted,
                "external_token",
                claims.token_id,
                claims.expires_at,
            )
        if not claims.subject.isdigit():
            raise invalid_credential("The bearer token is not valid.")
        user_id = int(claims.subject)
        if self._identities is None:
            standing = await self._standing(user_id)
        else:
            standing = await self._identities.standing(user_id, lambda: self._standing(user_id))
        if not standing.active:
            raise invalid_credential("The bearer token's user is deactivated.")
        roles = frozenset(standing.roles)
        return Identity(
            claims.subject, roles, scopes_for(roles), "token", claims.token_id, claims.expires_at
        )

    async def _standing(self, user_id: int) -> UserStanding:
        users, user_roles = tables.users, tables.user_roles
        statement = (
            sa.select(users.c.is_active, user_roles.c.role_name)
            .select_from(users.outerjoin(user_roles, user_roles.c.user_id == users.c.id))
            .where(users.c.id == user_id)
        )
        rows = await fetch_all(self._engine, statement)
        if not rows:
            raise invalid_credential("The bearer token's user does not exist.")
        roles = {row.role_name for row in rows if row.role_name is not None}
        return UserStanding(rows[0].is_active, tuple(role for role in ROLES if role in roles))

    async def logout(self, actor: Actor, token_id: str | None, expires_at: datetime | None) -> None:
        """Revokes the bearer token the actor signed this request with; audited."""
        if actor.user_id is None or token_id is None or expires_at is None:
            raise BadUserInputError(
                "Only a bearer token with an id can be signed out; an API key is revoked"
                " with revokeApiKey.",
                domain="auth",
            )
        await self._revoke(actor, token_id, expires_at, subject=actor.user_id, via="logout")

    async def revoke_token(self, actor: Actor, token: str) -> None:
        """Revokes any valid bearer token of this gateway's or its identity provider's; admins."""
        if not actor.is_admin:
            raise forbidden("Revoking another's token needs the admin:users scope.")
        try:
            claims = await self._tokens.verify(token)
        except UnauthenticatedError as error:
            # An expired or forged token needs no revocation; say why nothing was done.
            raise BadUserInputError(f"Not revoked: {error.message}", domain="auth") from None
        if claims.token_id is None or claims.expires_at is None:
            raise BadUserInputError("Not revoked: the token carries no id (jti).", domain="auth")
        await self._revoke(actor, claims.token_id, claims.expires_at, claims.subject, "admin")

    async def _revoke(
        self, actor: Actor, token_id: str, expires_at: datetime, subject: str, via: str
    ) -> None:
        await self._revocations.revoke(token_id, expires_at)
        if subject.isdigit():
            # Revocations are checked on every request; this also drops the subject's cached
            # standing so nothing about it outlives the revocation anywhere.
            await self._forget(int(subject))
        # The token id names the token without being it; the subject says whose it was.
        await self._audit.append(
            audit_event(
                actor,
                "token.revoke",
                f"token:{token_id}",
                details={"subject": subject, "via": via, "expires_at": expires_at.isoformat()},
            )
        )

    async def authenticate_api_key(self, key: str) -> Identity:
        """The identity behind an API key; UNAUTHENTICATED when unknown, revoked or expired."""
        shape = API_KEY_SHAPE.match(key)
        if shape is None:
            raise invalid_credential("The API key is not valid.")
        keys, users, user_roles = tables.api_keys, tables.users, tables.user_roles
        statement = (
            sa.select(*API_KEY_COLUMNS, keys.c.key_hash, users.c.is_active, user_roles.c.role_name)
            .select_from(
                keys.join(users, users.c.id == keys.c.user_id).outerjoin(
                    user_roles, user_roles.c.user_id == users.c.id
                )
            )
            .where(keys.c.prefix == API_KEY_PREFIX + shape.group(1))
        )
        rows = await fetch_all(self._engine, statement)
        # Compared even when no row matched, so the answer takes as long either way.
        stored = rows[0].key_hash if rows else hash_api_key("")
        if not hmac.compare_digest(hash_api_key(key), stored) or not rows:
            raise invalid_credential("The API key is not valid.")
        record = api_key_record(rows[0])
        now = datetime.now(UTC)
        if record.revoked_at is not None:
            raise invalid_credential("The API key has been revoked.")
        if record.expires_at is not None and record.expires_at <= now:
            raise invalid_credential("The API key has expired.")
        if not rows[0].is_active:
            raise invalid_credential("The API key's user is deactivated.")
        if record.last_used_at is None or now - record.last_used_at >= API_KEY_TOUCH_INTERVAL:
            await self._touch(record.id, now)
        roles = frozenset(row.role_name for row in rows if row.role_name is not None)
        return Identity(str(record.user_id), roles, scopes_for(roles), "api_key")

    async def _touch(self, key_id: int, now: datetime) -> None:
        keys = tables.api_keys
        stale = sa.or_(
            keys.c.last_used_at.is_(None), keys.c.last_used_at < now - API_KEY_TOUCH_INTERVAL
        )
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    sa.update(keys).where(keys.c.id == key_id, stale).values(last_used_at=now)
                )
        except (sa.exc.SQLAlchemyError, GatewayError) as error:
            # Bookkeeping only: a busy store must not turn a valid key away.
            self._drops.count(API_KEY_TOUCH_FAILED)
            _log.warning("api key last use not recorded", key_id=key_id, error=str(error))

    async def login(self, email: str, password: str, request_id: str | None) -> LoginResult:
        """A token for a correct email and password; every attempt is audited."""
        normalized = normalize_email(email)
        users = tables.users
        statement = sa.select(users.c.id, users.c.password_hash, users.c.is_active).where(
            users.c.email == normalized
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).one_or_none()
        password_hash = row.password_hash if row is not None else None
        matches = len(password) <= MAXIMUM_PASSWORD_LENGTH and await self._passwords.verify(
            password_hash, password
        )
        actor = (
            f"user:{row.id}" if row is not None else f"email:{normalized}"[:MAXIMUM_ACTOR_LENGTH]
        )
        reason = None
        if row is None:
            reason = "unknown_email"
        elif password_hash is None:
            reason = "no_password"
        elif not matches:
            reason = "wrong_password"
        elif not row.is_active:
            reason = "deactivated"
        event = AuditEvent(
            actor=actor,
            action="auth.login",
            target=actor,
            outcome=SUCCESS if reason is None else FAILURE,
            request_id=request_id,
            details={} if reason is None else {"reason": reason},
        )
        await self._audit.append(event)
        if row is None or reason is not None:
            if reason == "deactivated":
                raise invalid_credential("This account is deactivated.")
            raise invalid_credential("The email or password is wrong.")
        assert password_hash is not None
        if self._passwords.needs_rehash(password_hash):
            await self._store_password(row.id, password)
        issued = self._tokens.issue(str(row.id))
        user = await self._user_by_id(row.id)
        assert user is not None
        return LoginResult(issued.token, issued.expires_at, user)

    async def _store_password(self, user_id: int, password: str) -> None:
        password_hash = await self._passwords.hash(password)
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(tables.users)
                .where(tables.users.c.id == user_id)
                .values(password_hash=password_hash)
            )
