"""API keys: their format and stored form, and their management by owners and admins."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from dataintel.errors import BadUserInputError, NotFoundError
from dataintel.rbac import Actor
from dataintel.services.auth.base import AuthParts, check_cursors, forbidden, invalid_credential
from dataintel.services.auth.records import ApiKeyRecord, CreatedApiKey, audit_event
from dataintel.services.auth.users import checked_name
from dataintel.services.pagination import (
    Page,
    PageRequest,
    keyset_conditions,
    keyset_order,
    page_from_rows,
)
from dataintel.store import tables

API_KEY_PREFIX = "di_"
API_KEY_ID_CHARS = 12
API_KEY_SHAPE = re.compile(r"^di_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# A key's last use is good enough to the minute; writing it on every request would turn
# every read into a write.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)

API_KEY_COLUMNS = (
    tables.api_keys.c.id,
    tables.api_keys.c.user_id,
    tables.api_keys.c.name,
    tables.api_keys.c.prefix,
    tables.api_keys.c.created_at,
    tables.api_keys.c.expires_at,
    tables.api_keys.c.revoked_at,
    tables.api_keys.c.last_used_at,
)


def api_key_record(row: Any) -> ApiKeyRecord:
    """A key's record from a row holding API_KEY_COLUMNS."""
    return ApiKeyRecord(*(row._mapping[column.name] for column in API_KEY_COLUMNS))


def is_api_key(credential: str) -> bool:
    """Whether a credential has the shape of this gateway's API keys rather than a JWT."""
    return credential.startswith(API_KEY_PREFIX)


def hash_api_key(key: str) -> str:
    """The stored form of a key: SHA-256 suffices, the key is 256 random bits, not a password."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyManagement(AuthParts):
    """Creating, listing and revoking API keys: users their own, admins anyone's; audited."""

    def _key_owner(self, actor: Actor, user_id: int | None) -> int:
        own = actor.local_user_id
        if actor.user_id is None:
            raise invalid_credential("Sign in to manage API keys.")
        if user_id is None or user_id == own:
            if own is None:
                raise forbidden("API keys belong to users of this gateway; sign in as one.")
            return own
        if not actor.is_admin:
            raise forbidden("Only admins manage other users' API keys.")
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
        key_name = checked_name(name, "key name")
        now = datetime.now(UTC)
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise BadUserInputError("'expiresAt' needs a time zone offset.", domain="auth")
            if expires_at <= now:
                raise BadUserInputError("'expiresAt' must be in the future.", domain="auth")
        key_id = secrets.token_hex(API_KEY_ID_CHARS // 2)
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
                "name": key_name,
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
                        "name": key_name,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                    },
                ),
            )
        record = ApiKeyRecord(
            new_id, owner, key_name, API_KEY_PREFIX + key_id, now, expires_at, None, None
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
            raise invalid_credential("Sign in to list API keys.")
        keys = tables.api_keys
        check_cursors(page)
        columns = [keys.c.id]
        statement = (
            sa.select(*API_KEY_COLUMNS)
            .where(*self._visible_keys(actor, user_id), *keyset_conditions(columns, True, page))
            .order_by(*keyset_order(columns, True, page))
            .limit(page.limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return page_from_rows([api_key_record(row) for row in rows], page)

    async def count_api_keys(self, actor: Actor, user_id: int | None) -> int:
        """How many API keys the actor may see."""
        if actor.user_id is None:
            raise invalid_credential("Sign in to list API keys.")
        statement = sa.select(sa.func.count()).select_from(tables.api_keys)
        async with self._engine.connect() as connection:
            result = await connection.execute(statement.where(*self._visible_keys(actor, user_id)))
            return int(result.scalar_one())

    async def api_key(self, actor: Actor, key_id: int) -> ApiKeyRecord | None:
        """One API key the actor may see (its own; admins: any); None otherwise."""
        if actor.user_id is None:
            raise invalid_credential("Sign in to read API keys.")
        keys = tables.api_keys
        statement = sa.select(*API_KEY_COLUMNS).where(
            keys.c.id == key_id, *self._visible_keys(actor, None)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(statement)).one_or_none()
        return api_key_record(row) if row is not None else None

    async def revoke_api_key(self, actor: Actor, key_id: int) -> ApiKeyRecord:
        """Revokes one of the actor's keys (admins: any key); it stops working at once."""
        if actor.user_id is None:
            raise invalid_credential("Sign in to revoke API keys.")
        keys = tables.api_keys
        async with self._audit.transaction() as connection:
            row = (
                await connection.execute(
                    sa.select(*API_KEY_COLUMNS).where(
                        keys.c.id == key_id, *self._visible_keys(actor, None)
                    )
                )
            ).one_or_none()
            if row is None:
                # Someone else's key looks exactly like a missing one.
                raise NotFoundError(f"There is no API key {key_id}.", domain="auth")
            record = api_key_record(row)
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
