"""The records the auth service hands out: identities, users, API keys, logins, and filters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dataintel.rbac import Actor, scopes_for
from dataintel.services.audit import SUCCESS, AuditEvent
from dataintel.services.pagination import Keyset


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
