"""Roles, scopes and who acts: the RBAC vocabulary the gateway and the services share.

Depends on nothing in the project: the gateway's policy (@auth) and the services' access
rules import it from here, so the gateway never imports a service for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

READ_AUDIT_SCOPE = "read:audit"
ANONYMOUS_ACTOR = "anonymous"
"""How the audit log names a request without a credential."""
OPERATOR_NAME = "operator"

# The one place that says what each role may do.
VIEWER_SCOPES = frozenset(
    {"read:status", "read:commerce", "read:analytics", "read:features", "read:catalog"}
)
ANALYST_SCOPES = VIEWER_SCOPES | {"run:quality", "run:reconciliation", "export:datasets"}
DATA_ENGINEER_SCOPES = ANALYST_SCOPES | {"write:features", "manage:datasets"}
PRIVACY_OFFICER_SCOPES = VIEWER_SCOPES | {"gdpr:export", "gdpr:erase", READ_AUDIT_SCOPE}
ADMIN_USERS_SCOPE = "admin:users"
ALL_SCOPES = DATA_ENGINEER_SCOPES | PRIVACY_OFFICER_SCOPES | {ADMIN_USERS_SCOPE}

ROLE_SCOPES: Mapping[str, frozenset[str]] = {
    "viewer": VIEWER_SCOPES,
    "analyst": ANALYST_SCOPES,
    "data_engineer": DATA_ENGINEER_SCOPES,
    "privacy_officer": PRIVACY_OFFICER_SCOPES,
    "admin": ALL_SCOPES,
}
ROLES: tuple[str, ...] = tuple(ROLE_SCOPES)
ADMIN_ROLE = "admin"


def scopes_for(roles: frozenset[str] | Sequence[str]) -> frozenset[str]:
    """Every scope the given roles grant; unknown roles grant nothing."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_SCOPES.get(role, frozenset())
    return frozenset(granted)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who calls a service method, in which request: for access rules and the audit log."""

    user_id: str | None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    request_id: str | None = None

    @property
    def local_user_id(self) -> int | None:
        """The id of the store's user behind this actor; None for others (anonymous, external)."""
        if self.user_id is not None and self.user_id.isdigit():
            return int(self.user_id)
        return None

    @property
    def audit_name(self) -> str:
        """How the audit log names this actor: user:42, external:<sub>, operator, anonymous."""
        if self.user_id is None:
            return ANONYMOUS_ACTOR
        local = self.local_user_id
        return f"user:{local}" if local is not None else self.user_id

    @property
    def is_admin(self) -> bool:
        """True when the actor may manage users, roles and every API key."""
        return ADMIN_USERS_SCOPE in self.scopes


OPERATOR = Actor(OPERATOR_NAME, frozenset({ADMIN_ROLE}), ALL_SCOPES)
"""The operator at the command line: trusted like an admin, named as such in the audit log."""
