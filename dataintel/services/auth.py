"""Identity: roles and their scopes, users, passwords, API keys, credentials to identities."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import (
    BadUserInputError,
    DependencyUnavailableError,
    ForbiddenError,
    GatewayError,
    NotFoundError,
    UnauthenticatedError,
)
from dataintel.observability.logging import get_logger
from dataintel.rbac import (
    ADMIN_ROLE,
    ADMIN_USERS_SCOPE,
    ALL_SCOPES,
    ANALYST_SCOPES,
    DATA_ENGINEER_SCOPES,
    OPERATOR,
    OPERATOR_NAME,
    PRIVACY_OFFICER_SCOPES,
    ROLE_SCOPES,
    ROLES,
    VIEWER_SCOPES,
    Actor,
    scopes_for,
)
from dataintel.services.audit import (
    DENIED,
    FAILURE,
    SUCCESS,
    AuditEvent,
    AuditService,
)
from dataintel.services.pagination import (
    Keyset,
    Page,
    PageRequest,
    keyset_conditions,
    keyset_order,
    page_from_rows,
)
from dataintel.services.token_revocations import MemoryTokenRevocations, TokenRevocations
from dataintel.services.tokens import TokenCodec
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, fetch_all
from dataintel.store.rows import AnyRow
from dataintel.store.seed import ROLE_DESCRIPTIONS

# --- Records ------------------------------------------------------------------------------

API_KEY_PREFIX = "di_"
_API_KEY_ID_CHARS = 12
_API_KEY_SHAPE = re.compile(r"^di_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# A key's last use is good enough to the minute; writing it on every request would turn
# every read into a write.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)
MINIMUM_PASSWORD_LENGTH = 12
MAXIMUM_PASSWORD_LENGTH = 1024
_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAXIMUM_EMAIL_LENGTH = 320
_MAXIMUM_NAME_LENGTH = 200
_MAXIMUM_TARGET_LENGTH = 512
_MAXIMUM_ACTOR_LENGTH = 320

# The RBAC vocabulary lives in dataintel/rbac.py; its names stay importable from here.
__all__ = [
    "ADMIN_ROLE",
    "ADMIN_USERS_SCOPE",
    "ALL_SCOPES",
    "ANALYST_SCOPES",
    "API_KEY_PREFIX",
    "API_KEY_TOUCH_INTERVAL",
    "DATA_ENGINEER_SCOPES",
    "MAXIMUM_PASSWORD_LENGTH",
    "MINIMUM_PASSWORD_LENGTH",
    "OPERATOR",
    "OPERATOR_NAME",
    "PRIVACY_OFFICER_SCOPES",
    "ROLES",
    "ROLE_SCOPES",
    "VIEWER_SCOPES",
    "Actor",
    "ApiKeyRecord",
    "AuthService",
    "CreatedApiKey",
    "Identity",
    "LoginResult",
    "NewUser",
    "Passwords",
    "SqlAuthService",
    "UserFilter",
    "UserRecord",
    "api_key_keyset",
    "audit_event",
    "hash_api_key",
    "is_api_key",
    "normalize_email",
    "scopes_for",
    "user_keyset",
]

_log = get_logger("dataintel.auth")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified credential belongs to and what it may do."""

    user_id: str
    roles: frozenset[str]
    scopes: frozenset[str]
    method: str
    """token (the gateway's own), external_token (an identity provider's) or api_key."""
    token_id: str | None = None
    """The bearer token's ``jti``, which ``logout`` revokes; None for an API key."""
    token_expires_at: datetime | None = None
    """When the bearer token expires: its revocation is kept until then."""


def audit_event(
    actor: Actor,
    action: str,
    target: str,
    *,
    outcome: str = SUCCESS,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """An audit entry of something this actor did, in the actor's request."""
    return AuditEvent(
        actor=actor.audit_name,
        action=action,
        target=target,
        outcome=outcome,
        request_id=actor.request_id,
        details=details or {},
    )


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    email: str
    display_name: str
    is_active: bool
    created_at: datetime
    roles: tuple[str, ...]

    @property
    def scopes(self) -> frozenset[str]:
        """The scopes the user's roles grant."""
        return scopes_for(self.roles)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def is_usable(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        expired = self.expires_at is not None and self.expires_at <= now
        return self.revoked_at is None and not expired


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """A new key: its record and the secret, which is shown this once and never stored."""

    record: ApiKeyRecord
    secret: str


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    expires_at: datetime
    user: UserRecord


@dataclass(frozen=True, slots=True)
class NewUser:
    email: str
    display_name: str | None = None
    password: str | None = None
    roles: tuple[str, ...] = ("viewer",)


@dataclass(frozen=True, slots=True)
class UserFilter:
    """Users matching every given condition; None means no condition."""

    active: bool | None = None
    roles: tuple[str, ...] | None = None
    email_contains: str | None = None


def user_keyset(record: UserRecord) -> Keyset:
    """The position of a user in the users' order (by id)."""
    return (record.id,)


def api_key_keyset(record: ApiKeyRecord) -> Keyset:
    """The position of an API key in the keys' order (newest first)."""
    return (record.id,)


def is_api_key(credential: str) -> bool:
    """Whether a credential has the shape of this gateway's API keys rather than a JWT."""
    return credential.startswith(API_KEY_PREFIX)


def hash_api_key(key: str) -> str:
    """The stored form of a key: SHA-256 suffices, the key is 256 random bits, not a password."""
    return hashlib.sha256(key.encode()).hexdigest()


def normalize_email(email: str) -> str:
    """The form an email is stored and compared in."""
    return email.strip().lower()


class AuthService(Protocol):
    """Credentials to identities, login, and the management of users and API keys."""

    async def authenticate_token(self, token: str) -> Identity: ...

    async def authenticate_api_key(self, key: str) -> Identity: ...

    async def logout(
        self, actor: Actor, token_id: str | None, expires_at: datetime | None
    ) -> None: ...

    async def revoke_token(self, actor: Actor, token: str) -> None: ...

    async def login(self, email: str, password: str, request_id: str | None) -> LoginResult: ...

    async def user(self, actor: Actor, user_id: int) -> UserRecord | None: ...

    async def users(
        self, actor: Actor, where: UserFilter, page: PageRequest
    ) -> Page[UserRecord]: ...

    async def count_users(self, actor: Actor, where: UserFilter) -> int: ...

    async def create_user(self, actor: Actor, new: NewUser) -> UserRecord: ...

    async def set_roles(self, actor: Actor, user_id: int, roles: Sequence[str]) -> UserRecord: ...

    async def set_active(self, actor: Actor, user_id: int, active: bool) -> UserRecord: ...

    async def create_api_key(
        self,
        actor: Actor,
        name: str,
        expires_at: datetime | None = None,
        user_id: int | None = None,
    ) -> CreatedApiKey: ...

    async def api_keys(
        self, actor: Actor, user_id: int | None, page: PageRequest
    ) -> Page[ApiKeyRecord]: ...

    async def count_api_keys(self, actor: Actor, user_id: int | None) -> int: ...

    async def api_key(self, actor: Actor, key_id: int) -> ApiKeyRecord | None: ...

    async def revoke_api_key(self, actor: Actor, key_id: int) -> ApiKeyRecord: ...

    async def change_password(self, actor: Actor, current: str, new: str) -> UserRecord: ...

    async def set_password(self, actor: Actor, user_id: int, password: str) -> UserRecord: ...


class Passwords:
    """argon2id hashing, run in worker threads: one hash takes tens of milliseconds of CPU."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """The argon2id hash of a password."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether the password matches; without a hash, spends the same time and says no."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
            # Answering at once for an unknown email would tell which emails have accounts.
            await self._check(self._dummy_hash, password)
            return False
        return await self._check(password_hash, password)

    async def _check(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a hash was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)


def _invalid_credential(message: str) -> UnauthenticatedError:
    return UnauthenticatedError(message, domain="auth")


def _forbidden(message: str) -> ForbiddenError:
    return ForbiddenError(message, domain="auth")


def _checked_email(email: str) -> str:
    normalized = normalize_email(email)
    if len(normalized) > _MAXIMUM_EMAIL_LENGTH or not _EMAIL_SHAPE.match(normalized):
        raise BadUserInputError(f"'{email}' is not an email address.", domain="auth")
    return normalized


def _checked_password(password: str) -> str:
    if not MINIMUM_PASSWORD_LENGTH <= len(password) <= MAXIMUM_PASSWORD_LENGTH:
        raise BadUserInputError(
            f"A password must be {MINIMUM_PASSWORD_LENGTH} to {MAXIMUM_PASSWORD_LENGTH}"
            " characters long.",
            domain="auth",
        )
    return password


def _checked_roles(roles: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise BadUserInputError(
            f"Unknown roles: {', '.join(unknown)}; the roles are {', '.join(ROLES)}.",
            domain="auth",
        )
    return tuple(role for role in ROLES if role in roles)


def _checked_name(name: str, what: str) -> str:
    stripped = name.strip()
    if not 1 <= len(stripped) <= _MAXIMUM_NAME_LENGTH:
        raise BadUserInputError(
            f"The {what} must be 1 to {_MAXIMUM_NAME_LENGTH} characters long.", domain="auth"
        )
    return stripped


_USER_COLUMNS = (
    tables.users.c.id,
    tables.users.c.email,
    tables.users.c.display_name,
    tables.users.c.is_active,
    tables.users.c.created_at,
)
_API_KEY_COLUMNS = (
    tables.api_keys.c.id,
    tables.api_keys.c.user_id,
    tables.api_keys.c.name,
    tables.api_keys.c.prefix,
    tables.api_keys.c.created_at,
    tables.api_keys.c.expires_at,
    tables.api_keys.c.revoked_at,
    tables.api_keys.c.last_used_at,
)


def _api_key_record(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(*(row._mapping[column.name] for column in _API_KEY_COLUMNS))


def _user_conditions(where: UserFilter) -> list[Any]:
    users = tables.users.c
    conditions: list[Any] = []
    if where.active is not None:
        conditions.append(users.is_active == where.active)
    if where.email_contains:
        pattern = where.email_contains.lower().replace("\\", "\\\\")
        pattern = pattern.replace("%", "\\%").replace("_", "\\_")
        conditions.append(users.email.like(f"%{pattern}%", escape="\\"))
    if where.roles is not None:
        holders = sa.select(tables.user_roles.c.user_id).where(
            tables.user_roles.c.role_name.in_(where.roles)
        )
        conditions.append(users.id.in_(holders))
    return conditions


class SqlAuthService:
    """AuthService over the store's users, user_roles and api_keys tables."""

    def __init__(
        self,
        engine: StoreEngine,
        audit: AuditService,
        tokens: TokenCodec,
        passwords: Passwords | None = None,
        revocations: TokenRevocations | None = None,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._tokens = tokens
        self._passwords = passwords or Passwords()
        # The app passes the shared list; tools and tests get this process's own.
        self._revocations = revocations or MemoryTokenRevocations()

    # --- Credentials ----------------------------------------------------------------------

    async def authenticate_token(self, token: str) -> Identity:
        """The identity behind a bearer JWT; UNAUTHENTICATED when it is bad or its user is not."""
        claims = await self._tokens.verify(token)
        if claims.token_id is not None and await self._revocations.is_revoked(claims.token_id):
            raise _invalid_credential("The bearer token has been revoked.")
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
            raise _invalid_credential("The bearer token is not valid.")
        users, user_roles = tables.users, tables.user_roles
        statement = (
            sa.select(users.c.is_active, user_roles.c.role_name)
            .select_from(users.outerjoin(user_roles, user_roles.c.user_id == users.c.id))
            .where(users.c.id == int(claims.subject))
        )
        rows = await self._credential_rows(statement)
        if not rows:
            raise _invalid_credential("The bearer token's user does not exist.")
        if not rows[0].is_active:
            raise _invalid_credential("The bearer token's user is deactivated.")
        roles = frozenset(row.role_name for row in rows if row.role_name is not None)
        return Identity(
            claims.subject, roles, scopes_for(roles), "token", claims.token_id, claims.expires_at
        )

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
            raise _forbidden("Revoking another's token needs the admin:users scope.")
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
        shape = _API_KEY_SHAPE.match(key)
        if shape is None:
            raise _invalid_credential("The API key is not valid.")
        keys, users, user_roles = tables.api_keys, tables.users, tables.user_roles
        statement = (
            sa.select(*_API_KEY_COLUMNS, keys.c.key_hash, users.c.is_active, user_roles.c.role_name)
            .select_from(
                keys.join(users, users.c.id == keys.c.user_id).outerjoin(
                    user_roles, user_roles.c.user_id == users.c.id
                )
            )
            .where(keys.c.prefix == API_KEY_PREFIX + shape.group(1))
        )
        rows = await self._credential_rows(statement)
        # Compared even when no row matched, so the answer takes as long either way.
        stored = rows[0].key_hash if rows else hash_api_key("")
        if not hmac.compare_digest(hash_api_key(key), stored) or not rows:
            raise _invalid_credential("The API key is not valid.")
        record = _api_key_record(rows[0])
        now = datetime.now(UTC)
        if record.revoked_at is not None:
            raise _invalid_credential("The API key has been revoked.")
        if record.expires_at is not None and record.expires_at <= now:
            raise _invalid_credential("The API key has expired.")
        if not rows[0].is_active:
            raise _invalid_credential("The API key's user is deactivated.")
        if record.last_used_at is None or now - record.last_used_at >= API_KEY_TOUCH_INTERVAL:
            await self._touch(record.id, now)
        roles = frozenset(row.role_name for row in rows if row.role_name is not None)
        return Identity(str(record.user_id), roles, scopes_for(roles), "api_key")

    async def _credential_rows(self, statement: sa.Select[*tuple[Any, ...]]) -> Sequence[AnyRow]:
        try:
            return await fetch_all(self._engine, statement)
        except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as error:
            # The credential may be fine: the caller should retry, not sign in again.
            _log.warning("credential check failed", error=f"{type(error).__name__}: {error}")
            raise DependencyUnavailableError(
                "The store is unavailable; the credential cannot be checked.",
                domain="auth",
                retry_after=5,
            ) from None

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
            f"user:{row.id}" if row is not None else f"email:{normalized}"[:_MAXIMUM_ACTOR_LENGTH]
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
                raise _invalid_credential("This account is deactivated.")
            raise _invalid_credential("The email or password is wrong.")
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

    # --- Users ----------------------------------------------------------------------------

    async def _require_admin(self, actor: Actor, action: str, target: str) -> None:
        if actor.is_admin:
            return
        await self._audit.append(
            audit_event(
                actor,
                action,
                target,
                outcome=DENIED,
                details={"requiredScope": ADMIN_USERS_SCOPE},
            )
        )
        if actor.user_id is None:
            raise _invalid_credential("Sign in to manage users and API keys.")
        raise _forbidden("Managing users needs the admin:users scope.")

    async def _roles_by_user(
        self, connection: AsyncConnection, user_ids: Sequence[int]
    ) -> Mapping[int, tuple[str, ...]]:
        user_roles = tables.user_roles
        rows = await connection.execute(
            sa.select(user_roles.c.user_id, user_roles.c.role_name).where(
                user_roles.c.user_id.in_(set(user_ids))
            )
        )
        grouped: defaultdict[int, set[str]] = defaultdict(set)
        for user_id, role in rows:
            grouped[user_id].add(role)
        # Roles in their fixed order (viewer ... admin), whatever the store returns.
        return {
            user_id: tuple(role for role in ROLES if role in grouped[user_id])
            for user_id in user_ids
        }

    async def _users_with_roles(
        self, connection: AsyncConnection, rows: Sequence[Any]
    ) -> list[UserRecord]:
        roles = await self._roles_by_user(connection, [row.id for row in rows])
        return [
            UserRecord(
                row.id, row.email, row.display_name, row.is_active, row.created_at, roles[row.id]
            )
            for row in rows
        ]

    async def _user_by_id(
        self, user_id: int, connection: AsyncConnection | None = None
    ) -> UserRecord | None:
        statement = sa.select(*_USER_COLUMNS).where(tables.users.c.id == user_id)
        if connection is not None:
            rows = (await connection.execute(statement)).all()
            found = await self._users_with_roles(connection, rows)
            return found[0] if found else None
        async with self._engine.connect() as own:
            return await self._user_by_id(user_id, own)

    async def user(self, actor: Actor, user_id: int) -> UserRecord | None:
        """A user by id: admins see everyone, others only themselves (None otherwise)."""
        if not actor.is_admin and actor.local_user_id != user_id:
            return None
        return await self._user_by_id(user_id)

    async def users(self, actor: Actor, where: UserFilter, page: PageRequest) -> Page[UserRecord]:
        """A page of users by id; admins only."""
        if not actor.is_admin:
            raise _forbidden("Listing users needs the admin:users scope.")
        users = tables.users
        _check_cursors(page)
        keys = [users.c.id]
        statement = (
            sa.select(*_USER_COLUMNS)
            .where(*_user_conditions(where), *keyset_conditions(keys, False, page))
            .order_by(*keyset_order(keys, False, page))
            .limit(page.limit)
        )
        async with self._engine.connect() as connection:
            rows = page_from_rows((await connection.execute(statement)).all(), page)
            records = await self._users_with_roles(connection, rows.items)
        return Page(records, rows.has_next_page, rows.has_previous_page)

    async def count_users(self, actor: Actor, where: UserFilter) -> int:
        """Users matching the filter; admins only."""
        if not actor.is_admin:
            raise _forbidden("Listing users needs the admin:users scope.")
        statement = sa.select(sa.func.count()).select_from(tables.users)
        async with self._engine.connect() as connection:
            result = await connection.execute(statement.where(*_user_conditions(where)))
            return int(result.scalar_one())

    async def create_user(self, actor: Actor, new: NewUser) -> UserRecord:
        """A new user with roles and, optionally, a password; admins and the operator only."""
        target = f"email:{normalize_email(new.email)}"[:_MAXIMUM_TARGET_LENGTH]
        await self._require_admin(actor, "auth.user.create", target)
        email = _checked_email(new.email)
        roles = _checked_roles(new.roles)
        display_name = _checked_name(new.display_name or email.split("@")[0], "display name")
        password_hash = None
        if new.password is not None:
            password_hash = await self._passwords.hash(_checked_password(new.password))
        users = tables.users
        async with self._audit.transaction() as connection:
            taken = await connection.execute(sa.select(users.c.id).where(users.c.email == email))
            if taken.first() is not None:
                raise BadUserInputError(f"A user with email {email} exists.", domain="auth")
            user_id = (
                await connection.execute(
                    sa.insert(users)
                    .values(
                        email=email,
                        display_name=display_name,
                        password_hash=password_hash,
                        is_active=True,
                        created_at=datetime.now(UTC),
                    )
                    .returning(users.c.id)
                )
            ).scalar_one()
            await self._write_roles(connection, user_id, roles)
            await self._audit.append_in(
                connection,
                audit_event(
                    actor,
                    "auth.user.create",
                    f"user:{user_id}",
                    details={
                        "email": email,
                        "roles": list(roles),
                        "password": password_hash is not None,
                    },
                ),
            )
            created = await self._user_by_id(user_id, connection)
        assert created is not None
        return created

    async def _write_roles(
        self, connection: AsyncConnection, user_id: int, roles: Sequence[str]
    ) -> None:
        role_table, user_roles = tables.roles, tables.user_roles
        if roles:
            # The roles are seeded with the demo data; a store that was only migrated has none.
            existing = set(
                (
                    await connection.execute(
                        sa.select(role_table.c.name).where(role_table.c.name.in_(roles))
                    )
                ).scalars()
            )
            missing = [role for role in roles if role not in existing]
            if missing:
                await connection.execute(
                    sa.insert(role_table),
                    [{"name": role, "description": ROLE_DESCRIPTIONS[role]} for role in missing],
                )
        await connection.execute(sa.delete(user_roles).where(user_roles.c.user_id == user_id))
        if roles:
            await connection.execute(
                sa.insert(user_roles), [{"user_id": user_id, "role_name": role} for role in roles]
            )

    async def _other_active_admins(self, connection: AsyncConnection, user_id: int) -> int:
        users, user_roles = tables.users, tables.user_roles
        statement = (
            sa.select(sa.func.count())
            .select_from(users.join(user_roles, user_roles.c.user_id == users.c.id))
            .where(
                user_roles.c.role_name == ADMIN_ROLE,
                users.c.is_active.is_(True),
                users.c.id != user_id,
            )
        )
        return int((await connection.execute(statement)).scalar_one())

    async def set_roles(self, actor: Actor, user_id: int, roles: Sequence[str]) -> UserRecord:
        """Replaces a user's roles; admins only; the last active admin keeps the admin role."""
        await self._require_admin(actor, "auth.user.set_roles", f"user:{user_id}")
        checked = _checked_roles(roles)
        async with self._audit.transaction() as connection:
            before = await self._user_by_id(user_id, connection)
            if before is None:
                raise NotFoundError(f"There is no user {user_id}.", domain="auth")
            losing_admin = ADMIN_ROLE in before.roles and ADMIN_ROLE not in checked
            if (
                losing_admin
                and before.is_active
                and not await self._other_active_admins(connection, user_id)
            ):
                raise BadUserInputError(
                    "This is the last active admin; make another user admin first.",
                    domain="auth",
                )
            await self._write_roles(connection, user_id, checked)
            await self._audit.append_in(
                connection,
                audit_event(
                    actor,
                    "auth.user.set_roles",
                    f"user:{user_id}",
                    details={"before": list(before.roles), "after": list(checked)},
                ),
            )
            after = await self._user_by_id(user_id, connection)
        assert after is not None
        return after

    async def set_active(self, actor: Actor, user_id: int, active: bool) -> UserRecord:
        """Deactivates (or reactivates) a user: their tokens and keys stop working at once."""
        action = "auth.user.activate" if active else "auth.user.deactivate"
        await self._require_admin(actor, action, f"user:{user_id}")
        async with self._audit.transaction() as connection:
            before = await self._user_by_id(user_id, connection)
            if before is None:
                raise NotFoundError(f"There is no user {user_id}.", domain="auth")
            if (
                not active
                and before.is_active
                and ADMIN_ROLE in before.roles
                and not await self._other_active_admins(connection, user_id)
            ):
                raise BadUserInputError(
                    "This is the last active admin; make another user admin first.",
                    domain="auth",
                )
            await connection.execute(
                sa.update(tables.users).where(tables.users.c.id == user_id).values(is_active=active)
            )
            await self._audit.append_in(
                connection,
                audit_event(
                    actor,
                    action,
                    f"user:{user_id}",
                    details={"was_active": before.is_active},
                ),
            )
            after = await self._user_by_id(user_id, connection)
        assert after is not None
        return after

    # --- Passwords ------------------------------------------------------------------------

    async def change_password(self, actor: Actor, current: str, new: str) -> UserRecord:
        """Changes the actor's own password, given the current one; audited either way."""
        own = actor.local_user_id
        if actor.user_id is None:
            raise _invalid_credential("Sign in to change your password.")
        if own is None:
            raise _forbidden("Only users of this gateway have a password here.")
        checked = _checked_password(new)
        users = tables.users
        async with self._engine.connect() as connection:
            stored = (
                await connection.execute(sa.select(users.c.password_hash).where(users.c.id == own))
            ).scalar_one_or_none()
        if not await self._passwords.verify(stored, current):
            await self._audit.append(
                audit_event(
                    actor,
                    "auth.password.change",
                    f"user:{own}",
                    outcome=FAILURE,
                    details={"reason": "wrong_password" if stored else "no_password"},
                )
            )
            raise BadUserInputError(
                "The current password is wrong.",
                domain="auth",
                details={"argument": "currentPassword"},
            )
        return await self._write_password(actor, own, checked, "auth.password.change")

    async def set_password(self, actor: Actor, user_id: int, password: str) -> UserRecord:
        """Sets any user's password; admins and the operator only."""
        await self._require_admin(actor, "auth.password.set", f"user:{user_id}")
        return await self._write_password(
            actor, user_id, _checked_password(password), "auth.password.set"
        )

    async def _write_password(
        self, actor: Actor, user_id: int, password: str, action: str
    ) -> UserRecord:
        password_hash = await self._passwords.hash(password)
        users = tables.users
        async with self._audit.transaction() as connection:
            changed = await connection.execute(
                sa.update(users).where(users.c.id == user_id).values(password_hash=password_hash)
            )
            if changed.rowcount != 1:
                raise NotFoundError(f"There is no user {user_id}.", domain="auth")
            await self._audit.append_in(
                connection,
                audit_event(
                    actor,
                    action,
                    f"user:{user_id}",
                ),
            )
            updated = await self._user_by_id(user_id, connection)
        assert updated is not None
        return updated

    # --- API keys -------------------------------------------------------------------------

    def _key_owner(self, actor: Actor, user_id: int | None) -> int:
        own = actor.local_user_id
        if actor.user_id is None:
            raise _invalid_credential("Sign in to manage API keys.")
        if user_id is None or user_id == own:
            if own is None:
                raise _forbidden("API keys belong to users of this gateway; sign in as one.")
            return own
        if not actor.is_admin:
            raise _forbidden("Only admins manage other users' API keys.")
        return user_id

    async def create_api_key(
        self,
        actor: Actor,
        name: str,
        expires_at: datetime | None = None,
        user_id: int | None = None,
    ) -> CreatedApiKey:
        """A new key for the actor (or, for admins, another user); the secret is shown once."""
        owner = self._key_owner(actor, user_id)
        checked_name = _checked_name(name, "key name")
        now = datetime.now(UTC)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise BadUserInputError("'expiresAt' needs a time zone offset.", domain="auth")
            if expires_at <= now:
                raise BadUserInputError("'expiresAt' must be in the future.", domain="auth")
        key_id = secrets.token_hex(_API_KEY_ID_CHARS // 2)
        secret = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        keys = tables.api_keys
        async with self._audit.transaction() as connection:
            owner_row = await connection.execute(
                sa.select(tables.users.c.is_active).where(tables.users.c.id == owner)
            )
            active = owner_row.scalar_one_or_none()
            if active is None:
                raise NotFoundError(f"There is no user {owner}.", domain="auth")
            if not active:
                raise BadUserInputError(f"User {owner} is deactivated.", domain="auth")
            values = {
                "user_id": owner,
                "name": checked_name,
                "prefix": API_KEY_PREFIX + key_id,
                "key_hash": hash_api_key(secret),
                "created_at": now,
                "expires_at": expires_at,
            }
            new_id = (
                await connection.execute(sa.insert(keys).values(**values).returning(keys.c.id))
            ).scalar_one()
            await self._audit.append_in(
                connection,
                audit_event(
                    actor,
                    "auth.api_key.create",
                    f"api_key:{new_id}",
                    details={
                        "user": f"user:{owner}",
                        "prefix": values["prefix"],
                        "name": checked_name,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                    },
                ),
            )
        record = ApiKeyRecord(
            new_id, owner, checked_name, API_KEY_PREFIX + key_id, now, expires_at, None, None
        )
        return CreatedApiKey(record, secret)

    def _visible_keys(self, actor: Actor, user_id: int | None) -> list[Any]:
        # Row-level rule: a user sees only its own keys; admins see every key.
        keys = tables.api_keys.c
        if actor.is_admin:
            return [] if user_id is None else [keys.user_id == user_id]
        own = actor.local_user_id
        if own is None:
            return [sa.false()]
        return [keys.user_id == own] + ([] if user_id is None else [keys.user_id == user_id])

    async def api_keys(
        self, actor: Actor, user_id: int | None, page: PageRequest
    ) -> Page[ApiKeyRecord]:
        """A page of the API keys the actor may see, newest first."""
        if actor.user_id is None:
            raise _invalid_credential("Sign in to list API keys.")
        keys = tables.api_keys
        _check_cursors(page)
        columns = [keys.c.id]
        statement = (
            sa.select(*_API_KEY_COLUMNS)
            .where(*self._visible_keys(actor, user_id), *keyset_conditions(columns, True, page))
            .order_by(*keyset_order(columns, True, page))
            .limit(page.limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return page_from_rows([_api_key_record(row) for row in rows], page)

    async def count_api_keys(self, actor: Actor, user_id: int | None) -> int:
        """How many API keys the actor may see."""
        if actor.user_id is None:
            raise _invalid_credential("Sign in to list API keys.")
        statement = sa.select(sa.func.count()).select_from(tables.api_keys)
        async with self._engine.connect() as connection:
            result = await connection.execute(statement.where(*self._visible_keys(actor, user_id)))
            return int(result.scalar_one())

    async def api_key(self, actor: Actor, key_id: int) -> ApiKeyRecord | None:
        """One API key the actor may see (its own; admins: any); None otherwise."""
        if actor.user_id is None:
            raise _invalid_credential("Sign in to read API keys.")
        keys = tables.api_keys
        statement = sa.select(*_API_KEY_COLUMNS).where(
            keys.c.id == key_id, *self._visible_keys(actor, None)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).one_or_none()
        return _api_key_record(row) if row is not None else None

    async def revoke_api_key(self, actor: Actor, key_id: int) -> ApiKeyRecord:
        """Revokes one of the actor's keys (admins: any key); it stops working at once."""
        if actor.user_id is None:
            raise _invalid_credential("Sign in to revoke API keys.")
        keys = tables.api_keys
        async with self._audit.transaction() as connection:
            row = (
                await connection.execute(
                    sa.select(*_API_KEY_COLUMNS).where(
                        keys.c.id == key_id, *self._visible_keys(actor, None)
                    )
                )
            ).one_or_none()
            if row is None:
                # Someone else's key looks exactly like a missing one.
                raise NotFoundError(f"There is no API key {key_id}.", domain="auth")
            record = _api_key_record(row)
            if record.revoked_at is not None:
                return record
            now = datetime.now(UTC)
            await connection.execute(
                sa.update(keys).where(keys.c.id == key_id).values(revoked_at=now)
            )
            await self._audit.append_in(
                connection,
                audit_event(
                    actor,
                    "auth.api_key.revoke",
                    f"api_key:{key_id}",
                    details={"user": f"user:{record.user_id}", "prefix": record.prefix},
                ),
            )
        return ApiKeyRecord(
            record.id,
            record.user_id,
            record.name,
            record.prefix,
            record.created_at,
            record.expires_at,
            now,
            record.last_used_at,
        )


def _check_cursors(page: PageRequest) -> None:
    for cursor in (page.after, page.before):
        if cursor is not None and (len(cursor) != 1 or not isinstance(cursor[0], int)):
            raise BadUserInputError("The cursor does not point into this list.")
