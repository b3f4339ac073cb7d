"""The typed per-request context every resolver receives as ``info.context``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dataintel.errors import ForbiddenError, GatewayError
from dataintel.loaders import Loaders
from dataintel.services import Services
from dataintel.settings import Settings


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: anonymous until a credential says otherwise."""

    user_id: str | None = None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    token_id: str | None = None
    """The bearer token's id (``jti``) when one signed the request: what logout revokes."""
    token_expires_at: datetime | None = None

    @property
    def is_anonymous(self) -> bool:
        """True when no credential came with the request."""
        return self.user_id is None


ANONYMOUS = Viewer()


def unchecked_read(coordinate: str) -> GatewayError | None:
    """Until the field gate has seen the request, nothing may be read through node."""
    return ForbiddenError(f"{coordinate} was not checked for this request.", domain="auth")


@dataclass(slots=True)
class RequestContext:
    """Request id, viewer, a fresh loaders bundle, the app's services and settings."""

    request_id: str
    viewer: Viewer
    loaders: Loaders
    services: Services
    settings: Settings
    client_address: str | None = None
    client_name: str | None = None
    """The client application named by apollographql-client-name or graphql-client-name."""
    response_extensions: dict[str, object] = field(default_factory=dict)
    # Filled before execution: id() of a denied field node -> the error it resolves to.
    denied_fields: dict[int, GatewayError] = field(default_factory=dict)
    read_denial: Callable[[str], GatewayError | None] = unchecked_read
    """The error for reading what a field coordinate's @auth guards, None when the viewer
    may: the field gate sets it; ``node`` and ``nodes`` decide by type with it."""
