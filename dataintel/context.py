"""The typed per-request context every resolver receives as ``info.context``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from graphql import FieldNode

from dataintel.errors import ForbiddenError, GatewayError
from dataintel.loaders import Loaders
from dataintel.services import Services


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


def selection_key(node: FieldNode) -> int:
    """Where a field selection starts in its document's text: what names it in denials.

    The same for every parse of the same text (unlike the node object), and known to any
    executor that has the node. Prepared documents are always parsed with locations.
    """
    assert node.loc is not None, "prepared documents keep their locations"
    return node.loc.start


class FieldDenials:
    """The fields of one request's operation that resolve to an error without running.

    The policy stage (gateway/policy.py) fills it; an executor asks ``for_node`` for each
    field it is about to resolve (gateway/gated_executor.py). Empty for most requests, so
    ``if denials:`` skips the lookups.
    """

    __slots__ = ("_errors",)

    def __init__(self) -> None:
        self._errors: dict[int, GatewayError] = {}

    def deny(self, node: FieldNode, error: GatewayError) -> None:
        """The field selection resolves to this error (the first denial of a node holds)."""
        self._errors.setdefault(selection_key(node), error)

    def for_node(self, node: FieldNode) -> GatewayError | None:
        """The error this field selection resolves to; None when it runs."""
        return self._errors.get(selection_key(node)) if self._errors else None

    def __contains__(self, node: FieldNode) -> bool:
        return selection_key(node) in self._errors

    def __bool__(self) -> bool:
        return bool(self._errors)

    def __len__(self) -> int:
        return len(self._errors)


def unchecked_read(coordinate: str) -> GatewayError | None:
    """Until the field gate has seen the request, nothing may be read through node."""
    return ForbiddenError(f"{coordinate} was not checked for this request.", domain="auth")


@dataclass(slots=True)
class RequestContext:
    """Request id, viewer, a fresh loaders bundle and the app's services."""

    request_id: str
    viewer: Viewer
    loaders: Loaders
    services: Services
    max_page_size: int
    """The largest page a list field gives, and the most ids `nodes` takes."""
    client_address: str | None = None
    client_name: str | None = None
    """The client application named by apollographql-client-name or graphql-client-name."""
    response_extensions: dict[str, object] = field(default_factory=dict)
    denied_fields: FieldDenials = field(default_factory=lambda: FieldDenials())
    """Filled by the policy stage before execution: the errors denied fields resolve to."""
    read_denial: Callable[[str], GatewayError | None] = unchecked_read
    """The error for reading what a field coordinate's @auth guards, None when the viewer
    may: the field gate sets it; ``node`` and ``nodes`` decide by type with it."""
