"""The auth service's interface: what the resolvers and the HTTP layer call."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from dataintel.rbac import Actor
from dataintel.services.auth.records import (
    ApiKeyRecord,
    CreatedApiKey,
    Identity,
    LoginResult,
    NewUser,
    UserFilter,
    UserRecord,
)
from dataintel.services.pagination import Page, PageRequest


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
