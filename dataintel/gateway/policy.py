"""@auth and @rateLimit: decided once per field of an operation, before execution.

At startup the schema's directives become a table keyed by schema coordinate (``Type.field``,
policy_table.py). Each operation is walked once
(fragments included) into its guarded and rate-limited field nodes, kept on its analysis
(analysis.py); which of those the viewer may not read is decided once per operation and
set of roles and scopes, and kept there too. Denied nodes go into
``context.denied_fields`` (by their place in the document text), which the GatedExecutor
answers with the error without running the resolver: no work per resolved item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)

from dataintel.context import RequestContext, Viewer
from dataintel.directives.rate_limit import RateLimitPer
from dataintel.errors import (
    DependencyUnavailableError,
    ForbiddenError,
    GatewayError,
    RateLimitedError,
    UnauthenticatedError,
)
from dataintel.gateway.policy_table import (
    ANONYMOUS,
    DeclaredOn,
    FieldPolicy,
    FieldRateLimit,
    PolicyError,
    PolicyRow,
    PolicyTable,
    format_policy,
)
from dataintel.gateway.rate_limiting import Limiter
from dataintel.gateway.security_audit import (
    DENIED_ACTION,
    RATE_LIMITED_ACTION,
    SecurityAudit,
    actor_name,
)
from dataintel.rbac import ROLES, scopes_for

if TYPE_CHECKING:
    from dataintel.gateway.analysis import OperationAnalysis

__all__ = [
    "ANONYMOUS",
    "DeclaredOn",
    "FieldGate",
    "FieldPolicy",
    "FieldRateLimit",
    "GuardedField",
    "LimitedField",
    "OperationShape",
    "PolicyError",
    "PolicyRow",
    "PolicyTable",
    "format_policy",
    "walk_operation",
]


@dataclass(frozen=True, slots=True)
class GuardedField:
    """A field node of the operation with the policies it must satisfy."""

    node: FieldNode
    coordinate: str
    policies: tuple[FieldPolicy, ...]
    sensitive: bool
    """Denials of it are audited: a mutation or a rate-limited field."""


@dataclass(frozen=True, slots=True)
class LimitedField:
    """A field node of the operation with its @rateLimit."""

    node: FieldNode
    rule: FieldRateLimit


@dataclass(frozen=True, slots=True)
class OperationShape:
    """What an operation's walk found: its guarded and rate-limited field nodes."""

    document: DocumentNode
    guarded: tuple[GuardedField, ...]
    limited: tuple[LimitedField, ...]


def walk_operation(
    schema: GraphQLSchema,
    table: PolicyTable,
    document: DocumentNode,
    operation: OperationDefinitionNode,
) -> OperationShape:
    """The guarded and rate-limited field nodes of one operation, fragments included."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    root = schema.get_root_type(operation.operation)
    is_mutation = operation.operation == OperationType.MUTATION
    guarded: list[GuardedField] = []
    limited: list[LimitedField] = []
    # A node's parent type does not depend on where its fragment is spread, so each
    # fragment is walked once, however often it is spread.
    walked: set[str] = set()

    def selections(selection_set: SelectionSetNode, parent: GraphQLNamedType) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                field_node(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = schema.get_type(condition.name.value) if condition else parent
                selections(selection.selection_set, target or parent)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in walked:
                    continue
                walked.add(name)
                fragment = fragments[name]
                target = schema.get_type(fragment.type_condition.name.value)
                selections(fragment.selection_set, target or parent)

    def field_node(node: FieldNode, parent: GraphQLNamedType) -> None:
        name = node.name.value
        # Meta-fields: __typename reveals nothing; introspection has its own policy.
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return
        coordinate = f"{parent.name}.{name}"
        rule = table.rate_limit(coordinate)
        if rule is not None:
            limited.append(LimitedField(node, rule))
        policies = table.policies_at(parent, name)
        if policies:
            sensitive = rule is not None or (is_mutation and parent is root)
            guarded.append(GuardedField(node, coordinate, policies, sensitive))
        definition = parent.fields.get(name)
        if node.selection_set is not None and definition is not None:
            selections(node.selection_set, get_named_type(definition.type))

    if root is not None:
        selections(operation.selection_set, root)
    return OperationShape(document, tuple(guarded), tuple(limited))


class FieldGate:
    """Fills ``context.denied_fields`` before execution: @auth first, then @rateLimit."""

    def __init__(
        self,
        schema: GraphQLSchema,
        anonymous_roles: Collection[str],
        *,
        rate_limits_enabled: bool,
        field_limiter: Callable[[], Limiter | None],
        audit: SecurityAudit | None,
    ) -> None:
        self._schema = schema
        self.table = PolicyTable.from_schema(schema)
        anonymous = frozenset(anonymous_roles)
        unknown = sorted(anonymous - frozenset(ROLES))
        if unknown:
            raise PolicyError(f"anonymous_roles names unknown roles: {unknown}")
        self._anonymous = (anonymous, scopes_for(anonymous))
        self._field_limiter = field_limiter
        self._rate_limits_enabled = rate_limits_enabled
        self._audit = audit
        self.decisions = 0
        """Denial lists computed so far: a repeated document and viewer must not add to it."""

    def identity(self, viewer: Viewer) -> tuple[frozenset[str], frozenset[str]]:
        """The roles and scopes the policies see: anonymous_roles for an anonymous viewer."""
        if viewer.is_anonymous:
            return self._anonymous
        return viewer.roles, viewer.scopes

    def denied(
        self, analysis: OperationAnalysis, viewer: Viewer
    ) -> tuple[tuple[GuardedField, FieldPolicy], ...]:
        """The operation's fields this viewer may not read, with the policy each fails.

        Decided once per operation and identity (roles, scopes, signed in), and kept on
        the operation's analysis.
        """
        if not analysis.shape.guarded:
            return ()
        roles, scopes = self.identity(viewer)
        signed_in = not viewer.is_anonymous
        identity = (roles, scopes, signed_in)
        found = analysis.denials.get(identity)
        if found is not None:
            return found
        self.decisions += 1
        denied: list[tuple[GuardedField, FieldPolicy]] = []
        for guarded in analysis.shape.guarded:
            failed = next(
                (p for p in guarded.policies if not p.allows(roles, scopes, signed_in=signed_in)),
                None,
            )
            if failed is not None:
                denied.append((guarded, failed))
        decided = analysis.denials[identity] = tuple(denied)
        return decided

    def read_denial(self, coordinate: str, viewer: Viewer) -> GatewayError | None:
        """The error for this viewer reading the coordinate's field; None when it may.

        For resolvers that decide at run time what they return (``node`` by the type of the
        id): the same policy, roles and answer as a field of the operation.
        """
        # A coordinate without a policy of its own is no root field: nobody may, as there.
        policy = self.table.policy(coordinate) or FieldPolicy(coordinate, "nowhere")
        roles, scopes = self.identity(viewer)
        if policy.allows(roles, scopes, signed_in=not viewer.is_anonymous):
            return None
        return _denial(coordinate, policy, viewer)

    def needs_context(self, analysis: OperationAnalysis, viewer: Viewer) -> bool:
        """Whether ``enforce`` would deny or count anything for this viewer: else it needs
        no request context before execution (a response-cache hit never makes one)."""
        if self.denied(analysis, viewer):
            return True
        return bool(analysis.shape.limited) and self._rate_limits_enabled

    async def enforce(self, analysis: OperationAnalysis, context: RequestContext) -> None:
        """Marks the fields the viewer may not read, and those beyond their rate limit."""
        viewer = context.viewer
        context.read_denial = partial(self.read_denial, viewer=viewer)
        for guarded, policy in self.denied(analysis, viewer):
            context.denied_fields.deny(guarded.node, _denial(guarded.coordinate, policy, viewer))
            if guarded.sensitive and self._audit is not None:
                self._audit.record(
                    actor=actor_name(viewer.user_id),
                    action=DENIED_ACTION,
                    target=f"field:{guarded.coordinate}",
                    request_id=context.request_id,
                    details={"client": context.client_address},
                )
        shape = analysis.shape
        if not shape.limited or not self._rate_limits_enabled:
            return
        limiter = self._field_limiter()
        if limiter is None:
            return
        counted = [
            limited for limited in shape.limited if limited.node not in context.denied_fields
        ]
        # Each count is a Redis round trip: made side by side, not one field after another.
        errors = await asyncio.gather(
            *(self._count(limiter, limited.rule, context) for limited in counted)
        )
        for limited, error in zip(counted, errors, strict=True):
            if error is not None:
                context.denied_fields.deny(limited.node, error)

    async def _count(
        self, limiter: Limiter, rule: FieldRateLimit, context: RequestContext
    ) -> GatewayError | None:
        viewer = context.viewer
        address = context.client_address or "unknown"
        if rule.per == RateLimitPer.VIEWER and viewer.user_id is not None:
            key = f"viewer:{viewer.user_id}"
        else:
            key = f"ip:{address}"
        admission = await limiter.hit(rule.item, "field", rule.coordinate, key)
        if admission.allowed:
            return None
        if admission.unavailable:
            return DependencyUnavailableError(
                f"{rule.coordinate} is rate limited and the limits cannot be counted right now.",
                domain="rate_limit",
                retry_after=float(admission.retry_after_seconds),
                details={"field": rule.coordinate},
            )
        if self._audit is not None:
            self._audit.record(
                actor=actor_name(viewer.user_id),
                action=RATE_LIMITED_ACTION,
                target=f"field:{rule.coordinate}",
                request_id=context.request_id,
                details={"client": address, "limit": rule.limit, "window": rule.window_seconds},
                repeat_after_seconds=float(rule.window_seconds),
            )
        return RateLimitedError(
            f"Too many requests for {rule.coordinate}: at most {rule.limit} every"
            f" {rule.window_seconds} seconds per {rule.per.value}.",
            domain="rate_limit",
            retry_after=float(admission.retry_after_seconds),
            details={"field": rule.coordinate, "limit": rule.limit, "window": rule.window_seconds},
        )


def _denial(coordinate: str, policy: FieldPolicy, viewer: Viewer) -> GatewayError:
    """UNAUTHENTICATED when signing in could help, FORBIDDEN when it would not.

    A front-end shows a sign-in prompt for the first and "you may not" for the second.
    """
    if policy.declared_on == "nowhere":
        message = f"{coordinate} declares no @auth policy, so nobody may read it."
    elif viewer.is_anonymous:
        return UnauthenticatedError(
            f"Sign in to read {coordinate}: anonymous requests may not.",
            domain="auth",
            details={"field": coordinate},
        )
    else:
        message = f"Your roles and scopes do not allow reading {coordinate}."
    return ForbiddenError(message, domain="auth", details={"field": coordinate})
