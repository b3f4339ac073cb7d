"""What every part of the SQL auth service shares: its collaborators, user reads, admin checks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import BadUserInputError, ForbiddenError, UnauthenticatedError
from dataintel.observability.drops import Drops
from dataintel.rbac import ADMIN_USERS_SCOPE, ROLES, Actor
from dataintel.services.audit import DENIED, AuditService
from dataintel.services.auth.identity_cache import IdentityCache
from dataintel.services.auth.passwords import Passwords
from dataintel.services.auth.records import UserRecord, audit_event
from dataintel.services.pagination import PageRequest
from dataintel.services.token_revocations import TokenRevocations
from dataintel.services.tokens import TokenCodec
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine

USER_COLUMNS = (
    tables.users.c.id,
    tables.users.c.email,
    tables.users.c.display_name,
    tables.users.c.is_active,
    tables.users.c.created_at,
)


def invalid_credential(message: str) -> UnauthenticatedError:
    """UNAUTHENTICATED in the auth domain."""
    return UnauthenticatedError(message, domain="auth")


def forbidden(message: str) -> ForbiddenError:
    """FORBIDDEN in the auth domain."""
    return ForbiddenError(message, domain="auth")


def check_cursors(page: PageRequest) -> None:
    """Refuses cursors that are not a position in an id-ordered list."""
    for cursor in (page.after, page.before):
        if cursor is not None and (len(cursor) != 1 or not isinstance(cursor[0], int)):
            raise BadUserInputError("The cursor does not point into this list.")


class AuthParts:
    """The collaborators and shared reads of the SQL auth service's parts."""

    _engine: StoreEngine
    _audit: AuditService
    _tokens: TokenCodec
    _passwords: Passwords
    _revocations: TokenRevocations
    _identities: IdentityCache | None
    _drops: Drops

    async def _forget(self, user_id: int) -> None:
        """Drops a user's cached standing on every replica, after a change has committed."""
        if self._identities is not None:
            await self._identities.forget(user_id)

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
            raise invalid_credential("Sign in to manage users and API keys.")
        raise forbidden("Managing users needs the admin:users scope.")

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
        statement = sa.select(*USER_COLUMNS).where(tables.users.c.id == user_id)
        if connection is not None:
            rows = (await connection.execute(statement)).all()
            found = await self._users_with_roles(connection, rows)
            return found[0] if found else None
        async with self._engine.connect() as own:
            return await self._user_by_id(user_id, own)
