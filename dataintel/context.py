"""The typed per-request context every resolver receives as ``info.context``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from graphql import FieldNode

from dataintel.errors import ForbiddenError, GatewayError
from dataintel.loaders import Loaders, create_loaders
from dataintel.services import Services
from dataintel.settings import GraphQLSettings


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


class RequestContexts:
    """Builds each request's context over the app's services, with fresh loaders every time."""

    def __init__(
        self, services: Callable[[], Services], graphql: GraphQLSettings, max_page_size: int
    ) -> None:
        self._services = services
        self._graphql = graphql
        self._max_page_size = max_page_size

    def new(
        self,
        request_id: str,
        viewer: Viewer,
        client_address: str | None,
        client_name: str | None,
    ) -> RequestContext:
        """The context of one request: its own loaders, the services in force now."""
        services = self._services()
        return RequestContext(
            request_id=request_id,
            viewer=viewer,
            loaders=create_loaders(services, self._graphql),
            services=services,
            max_page_size=self._max_page_size,
            client_address=client_address,
            client_name=client_name,
        )
