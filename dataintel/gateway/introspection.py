"""Who may introspect the schema: decided per request, from a mark set once per document.

A validation rule cannot depend on the viewer without making the validation cache key on
the viewer too; so documents are marked when they are prepared, and the viewer is checked
against the mark on every request.
"""

from __future__ import annotations

from graphql import (
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    InlineFragmentNode,
    SelectionSetNode,
)

from dataintel.context import Viewer
from dataintel.errors import ForbiddenError
from dataintel.gateway.request import RequestRejected
from dataintel.settings import GraphQLSettings

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
"""The meta-fields that read the schema; ``__typename`` is not one (clients need it)."""


def uses_introspection(document: DocumentNode) -> bool:
    """Whether any operation or fragment of the document selects ``__schema`` or ``__type``."""
    pending: list[SelectionSetNode] = [
        definition.selection_set
        for definition in document.definitions
        if isinstance(definition, ExecutableDefinitionNode)
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode) and selection.name.value in INTROSPECTION_FIELDS:
                return True
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                pending.append(selection.selection_set)
    return False


class IntrospectionPolicy:
    """Anonymous viewers per introspection_anonymous; in production, only the listed roles."""

    def __init__(self, graphql: GraphQLSettings, *, production: bool) -> None:
        self._roles_only = production
        self._roles = frozenset(graphql.introspection_roles)
        anonymous = graphql.introspection_anonymous
        self._anonymous = anonymous if anonymous is not None else not production
        # "Did you mean …?" names fields and types: where the schema is not open to the
        # viewer, the suggestions would leak it piece by piece.
        self._never_suggest = production or not graphql.introspection

    def allows(self, viewer: Viewer) -> bool:
        """Whether this viewer may run a document that introspects the schema."""
        if viewer.is_anonymous:
            return self._anonymous
        return not self._roles_only or not self._roles.isdisjoint(viewer.roles)

    def hides_suggestions(self, viewer: Viewer) -> bool:
        """Whether error messages for this viewer leave out "Did you mean …?" suggestions."""
        return self._never_suggest or not self.allows(viewer)

    def check(self, introspects: bool, viewer: Viewer) -> None:
        """Raises RequestRejected (403, FORBIDDEN) when the viewer may not introspect."""
        if not introspects or self.allows(viewer):
            return
        message = (
            "Introspection is not allowed for anonymous requests; send a credential."
            if viewer.is_anonymous
            else "Introspection is not allowed for your roles."
        )
        raise RequestRejected([ForbiddenError(message, domain="auth")], status=403)
