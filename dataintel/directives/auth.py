"""@auth: who may read a field, declared in the schema and enforced once per field of an operation.

A field may be read when its policy is public, when it asks only for a signed-in viewer and
the request carries a credential, when the viewer holds any of its roles, or when the viewer
holds every one of its scopes (if it lists scopes). A field without its own
@auth takes the one of the type it belongs to; a root field (of Query or Mutation) must
carry its own, or nobody may read it. ``gateway/policy.py`` reads these once at startup.
"""

from __future__ import annotations

from collections.abc import Iterable

import strawberry
from strawberry.schema_directive import Location

from dataintel.services.auth import ANALYST_SCOPES, ROLE_SCOPES, VIEWER_SCOPES


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION, Location.OBJECT],
    name="auth",
    description="Who may read the field (or every field of the type): anyone when public,"
    " any signed-in viewer when authenticated, else a viewer holding any of the roles or all"
    " of the scopes.",
)
class Auth:
    roles: list[str] | None = strawberry.UNSET
    scopes: list[str] | None = strawberry.UNSET
    public: bool | None = strawberry.UNSET
    authenticated: bool | None = strawberry.UNSET


def roles_granting(scopes: Iterable[str]) -> tuple[str, ...]:
    """Every role whose scopes include all of the given ones, in the roles' declared order."""
    wanted = frozenset(scopes)
    return tuple(role for role, granted in ROLE_SCOPES.items() if wanted <= granted)


VIEWER_OR_ABOVE = roles_granting(VIEWER_SCOPES)
"""Roles that read the business data: viewer, analyst, data_engineer, privacy_officer, admin."""
ANALYST_OR_ABOVE = roles_granting(ANALYST_SCOPES)
"""Roles that analyse: analyst, data_engineer, admin."""

PUBLIC = Auth(public=True)
"""Anyone, anonymous included."""
SIGNED_IN = Auth(authenticated=True)
"""Any viewer with a valid credential, whatever its roles (none included)."""
VIEWERS = Auth(roles=list(VIEWER_OR_ABOVE))
ANALYSTS = Auth(roles=list(ANALYST_OR_ABOVE))


def auth_of(directives: object) -> Auth | None:
    """The @auth among a Strawberry definition's directives, if any."""
    if not isinstance(directives, list | tuple):
        return None
    return next((item for item in directives if isinstance(item, Auth)), None)
