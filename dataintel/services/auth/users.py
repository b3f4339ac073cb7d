"""Users: who they are, their roles and active state, their passwords; admins manage them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import BadUserInputError, NotFoundError
from dataintel.rbac import ADMIN_ROLE, ROLES, Actor
from dataintel.services.audit import FAILURE
from dataintel.services.auth.base import (
    USER_COLUMNS,
    AuthParts,
    check_cursors,
    forbidden,
    invalid_credential,
)
from dataintel.services.auth.passwords import checked_password
from dataintel.services.auth.records import NewUser, UserFilter, UserRecord, audit_event
from dataintel.services.pagination import (
    Page,
    PageRequest,
    keyset_conditions,
    keyset_order,
    page_from_rows,
)
from dataintel.store import tables
from dataintel.store.seed import ROLE_DESCRIPTIONS

_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+$")
_MAXIMUM_EMAIL_LENGTH = 320
_MAXIMUM_NAME_LENGTH = 200
MAXIMUM_TARGET_LENGTH = 512


def normalize_email(email: str) -> str:
    """The form an email is stored and compared in."""
    return email.strip().lower()


def checked_email(email: str) -> str:
    """The normalized email, when it looks like one; BAD_USER_INPUT otherwise."""
    normalized = normalize_email(email)
    if len(normalized) > _MAXIMUM_EMAIL_LENGTH or not _EMAIL_SHAPE.match(normalized):
        raise BadUserInputError(f"'{email}' is not an email address.", domain="auth")
    return normalized


def checked_roles(roles: Sequence[str]) -> tuple[str, ...]:
    """Known roles in their fixed order; BAD_USER_INPUT names any unknown one."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise BadUserInputError(
            f"Unknown roles: {', '.join(unknown)}; the roles are {', '.join(ROLES)}.",
            domain="auth",
        )
    return tuple(role for role in ROLES if role in roles)


def checked_name(name: str, what: str) -> str:
    """A trimmed name of an allowed length; BAD_USER_INPUT otherwise."""
    stripped = name.strip()
    if not 1 <= len(stripped) <= _MAXIMUM_NAME_LENGTH:
        raise BadUserInputError(
            f"The {what} must be 1 to {_MAXIMUM_NAME_LENGTH} characters long.", domain="auth"
        )
    return stripped


def user_conditions(where: UserFilter) -> list[Any]:
    """The WHERE conditions of a user filter."""
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


class UserDirectory(AuthParts):
    """Reading and managing users: roles, active state, passwords; audited."""

    async def user(self, actor: Actor, user_id: int) -> UserRecord | None:
        """A user by id: admins see everyone, others only themselves (None otherwise)."""
        if not actor.is_admin and actor.local_user_id != user_id:
            return None
        return await self._user_by_id(user_id)

    async def users(self, actor: Actor, where: UserFilter, page: PageRequest) -> Page[UserRecord]:
        """A page of users by id; admins only."""
        if not actor.is_admin:
            raise forbidden("Listing users needs the admin:users scope.")
        users = tables.users
        check_cursors(page)
        keys = [users.c.id]
        statement = (
            sa.select(*USER_COLUMNS)
            .where(*user_conditions(where), *keyset_conditions(keys, False, page))
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
            raise forbidden("Listing users needs the admin:users scope.")
        statement = sa.select(sa.func.count()).select_from(tables.users)
        async with self._engine.connect() as connection:
            result = await connection.execute(statement.where(*user_conditions(where)))
            return int(result.scalar_one())

    async def create_user(self, actor: Actor, new: NewUser) -> UserRecord:
        """A new user with roles and, optionally, a password; admins and the operator only."""
        target = f"email:{normalize_email(new.email)}"[:MAXIMUM_TARGET_LENGTH]
        await self._require_admin(actor, "auth.user.create", target)
        email = checked_email(new.email)
        roles = checked_roles(new.roles)
        display_name = checked_name(new.display_name or email.split("@")[0], "display name")
        password_hash = None
        if new.password is not None:
            password_hash = await self._passwords.hash(checked_password(new.password))
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
        checked = checked_roles(roles)
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
        await self._forget(user_id)
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
        await self._forget(user_id)
        return after

    # --- Passwords ------------------------------------------------------------------------

    async def change_password(self, actor: Actor, current: str, new: str) -> UserRecord:
        """Changes the actor's own password, given the current one; audited either way."""
        own = actor.local_user_id
        if actor.user_id is None:
            raise invalid_credential("Sign in to change your password.")
        if own is None:
            raise forbidden("Only users of this gateway have a password here.")
        checked = checked_password(new)
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
            actor, user_id, checked_password(password), "auth.password.set"
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
