"""Resolvers of the auth domain: the viewer, login, users and API keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from dataintel.context import Viewer
from dataintel.errors import BadUserInputError
from dataintel.resolvers.commerce import page_request as page_request
from dataintel.resolvers.global_ids import object_key
from dataintel.resolvers.info import Info
from dataintel.services.auth import (
    Actor,
    ApiKeyRecord,
    CreatedApiKey,
    LoginResult,
    NewUser,
    UserFilter,
    UserRecord,
)
from dataintel.services.pagination import Page, PageRequest


def actor(info: Info) -> Actor:
    """The request's viewer as the services see it, with the request id for the audit log."""
    viewer = info.context.viewer
    return Actor(viewer.user_id, viewer.roles, viewer.scopes, info.context.request_id)


def user_id(raw: str) -> int:
    """The key inside a user ID argument: a User's global id or the plain key."""
    try:
        return object_key(raw, "User", "user")
    except BadUserInputError as error:
        raise BadUserInputError(error.message, domain="auth", details=error.details) from None


def api_key_id(raw: str) -> int:
    """The key inside an API key ID argument: an ApiKey's global id or the plain key."""
    try:
        return object_key(raw, "ApiKey", "API key")
    except BadUserInputError as error:
        raise BadUserInputError(error.message, domain="auth", details=error.details) from None


@dataclass(frozen=True, slots=True)
class Me:
    """The viewer and, when it is a user of this gateway, that user's record."""

    viewer: Viewer
    user: UserRecord | None


async def me(info: Info) -> Me | None:
    """The request's viewer; None when anonymous."""
    viewer = info.context.viewer
    if viewer.is_anonymous:
        return None
    local = actor(info).local_user_id
    record = None
    if local is not None:
        record = await info.context.services.auth.user(actor(info), local)
    return Me(viewer, record)


async def login(info: Info, email: str, password: str) -> LoginResult:
    """A bearer token for an email and password; UNAUTHENTICATED on this field otherwise."""
    return await info.context.services.auth.login(email, password, info.context.request_id)


async def logout(info: Info) -> bool:
    """Revokes the bearer token of this request on every replica."""
    viewer = info.context.viewer
    await info.context.services.auth.logout(actor(info), viewer.token_id, viewer.token_expires_at)
    return True


async def revoke_token(info: Info, token: str) -> bool:
    """Revokes any valid bearer token on every replica; admins only."""
    await info.context.services.auth.revoke_token(actor(info), token)
    return True


async def user(info: Info, raw_id: str) -> UserRecord | None:
    """A user by id: admins see everyone, others only themselves."""
    return await info.context.services.auth.user(actor(info), user_id(raw_id))


async def users(
    info: Info, page: PageRequest, where: UserFilter
) -> tuple[Page[UserRecord], Callable[[], Awaitable[int]]]:
    """A page of users by id, with a count on demand; admins only."""
    service, who = info.context.services.auth, actor(info)
    found = await service.users(who, where, page)
    return found, lambda: service.count_users(who, where)


async def create_user(info: Info, new: NewUser) -> UserRecord:
    """A new user; admins only."""
    return await info.context.services.auth.create_user(actor(info), new)


async def set_roles(info: Info, raw_id: str, roles: Sequence[str]) -> UserRecord:
    """Replaces a user's roles; admins only."""
    return await info.context.services.auth.set_roles(actor(info), user_id(raw_id), roles)


async def set_active(info: Info, raw_id: str, active: bool) -> UserRecord:
    """Deactivates or reactivates a user; admins only."""
    return await info.context.services.auth.set_active(actor(info), user_id(raw_id), active)


async def create_api_key(
    info: Info, name: str, expires_at: datetime | None, owner: str | None
) -> CreatedApiKey:
    """A new API key for the viewer (admins: for any user); its secret is returned once."""
    owner_id = user_id(owner) if owner is not None else None
    service = info.context.services.auth
    return await service.create_api_key(actor(info), name, expires_at, owner_id)


async def api_keys(
    info: Info, page: PageRequest, owner: str | None
) -> tuple[Page[ApiKeyRecord], Callable[[], Awaitable[int]]]:
    """A page of the API keys the viewer may see (its own; admins: all), newest first."""
    owner_id = user_id(owner) if owner is not None else None
    service, who = info.context.services.auth, actor(info)
    found = await service.api_keys(who, owner_id, page)
    return found, lambda: service.count_api_keys(who, owner_id)


async def revoke_api_key(info: Info, raw_id: str) -> ApiKeyRecord:
    """Revokes an API key of the viewer's (admins: any)."""
    return await info.context.services.auth.revoke_api_key(actor(info), api_key_id(raw_id))


async def change_password(info: Info, current: str, new: str) -> UserRecord:
    """Changes the viewer's own password."""
    return await info.context.services.auth.change_password(actor(info), current, new)


async def set_password(info: Info, raw_id: str, password: str) -> UserRecord:
    """Sets a user's password; admins only."""
    return await info.context.services.auth.set_password(actor(info), user_id(raw_id), password)
