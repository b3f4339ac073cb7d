"""@auth and @rateLimit: read from the schema once, decided once per field of an operation.

At startup the schema's directives become a table keyed by schema coordinate (``Type.field``):
a field's own @auth, else its type's; a root field with neither is readable by nobody.
Per request, the operation is walked once per document (fragments included) into the list
of its guarded and rate-limited field nodes; which of those the viewer may not read is then
decided once per document, operation and set of roles and scopes, and memoized. Denied
nodes go into ``context.denied_fields``, which the GatedExecutor answers with the error
without running the resolver: no work per resolved item.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Literal, TypeVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from limits import RateLimitItem

from dataintel.context import RequestContext, Viewer
from dataintel.directives.auth import Auth
from dataintel.directives.lookup import auth_on, rate_limit_on
from dataintel.directives.rate_limit import RateLimitPer
from dataintel.errors import (
    DependencyUnavailableError,
    ForbiddenError,
    GatewayError,
    RateLimitedError,
    UnauthenticatedError,
)
from dataintel.gateway.documents import PreparedDocument
from dataintel.gateway.rate_limiting import Limiter, RateLimits, limit_item
from dataintel.gateway.security_audit import (
    DENIED_ACTION,
    RATE_LIMITED_ACTION,
    SecurityAudit,
    actor_name,
)
from dataintel.services.auth import ALL_SCOPES, ROLE_SCOPES, ROLES, scopes_for
from dataintel.settings import Settings

ANONYMOUS = "anonymous"
"""How the policy table and ``dataintel schema policy`` name a viewer without a credential."""

DeclaredOn = Literal["field", "type", "nowhere"]
K = TypeVar("K")
V = TypeVar("V")


class PolicyError(ValueError):
    """A directive in the schema that cannot be enforced (an unknown role, a zero limit)."""


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """Who may read one field, and where that was declared."""

    coordinate: str
    declared_on: DeclaredOn
    public: bool = False
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    authenticated: bool = False

    def allows(
        self, roles: frozenset[str], scopes: frozenset[str], *, signed_in: bool = False
    ) -> bool:
        """Public, signed in when that is enough, any of the roles, or every one of the scopes."""
        if self.public or (self.authenticated and signed_in) or not self.roles.isdisjoint(roles):
            return True
        return bool(self.scopes) and self.scopes <= scopes

    def readers(self) -> frozenset[str]:
        """The roles (and ``anonymous``) this policy lets read, on its own."""
        if self.public:
            return frozenset((ANONYMOUS, *ROLES))
        if self.authenticated:
            return frozenset(ROLES)
        by_scope = {role for role in ROLES if self.scopes and self.scopes <= ROLE_SCOPES[role]}
        return frozenset(self.roles | by_scope)


@dataclass(frozen=True, slots=True)
class FieldRateLimit:
    """A field's @rateLimit, with the ``limits`` item it is counted with."""

    coordinate: str
    limit: int
    window_seconds: int
    per: RateLimitPer
    item: RateLimitItem


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One field as ``dataintel schema policy`` prints it."""

    coordinate: str
    readers: tuple[str, ...]
    declared_on: DeclaredOn | Literal["path"]
    scopes: tuple[str, ...]
    rate_limit: FieldRateLimit | None


def _policy(coordinate: str, declared_on: DeclaredOn, directive: Auth) -> FieldPolicy:
    roles = frozenset(directive.roles or ())
    scopes = frozenset(directive.scopes or ())
    unknown = sorted((roles - frozenset(ROLES)) | (scopes - ALL_SCOPES))
    if unknown:
        raise PolicyError(f"@auth on {coordinate} names unknown roles or scopes: {unknown}")
    return FieldPolicy(
        coordinate,
        declared_on,
        public=directive.public is True,
        roles=roles,
        scopes=scopes,
        authenticated=directive.authenticated is True,
    )


def _composite_types(schema: GraphQLSchema) -> list[GraphQLObjectType | GraphQLInterfaceType]:
    return [
        named
        for name, named in schema.type_map.items()
        if not name.startswith("__") and isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
    ]


class PolicyTable:
    """Every field's policy and rate limit, read once from the schema's directives."""

    def __init__(
        self,
        schema: GraphQLSchema,
        policies: Mapping[str, FieldPolicy],
        rate_limits: Mapping[str, FieldRateLimit],
    ) -> None:
        self._schema = schema
        self._policies = policies
        self._rate_limits = rate_limits
        self._by_node_type: dict[tuple[str, str], tuple[FieldPolicy, ...]] = {}

    @classmethod
    def from_schema(cls, schema: GraphQLSchema) -> PolicyTable:
        """Reads @auth and @rateLimit; raises PolicyError for one that cannot be enforced."""
        roots = {root.name for root in _root_types(schema)}
        policies: dict[str, FieldPolicy] = {}
        rate_limits: dict[str, FieldRateLimit] = {}
        for named in _composite_types(schema):
            type_auth = auth_on(named)
            for name, definition in named.fields.items():
                coordinate = f"{named.name}.{name}"
                own = auth_on(definition)
                if own is not None:
                    policies[coordinate] = _policy(coordinate, "field", own)
                elif type_auth is not None:
                    policies[coordinate] = _policy(coordinate, "type", type_auth)
                elif named.name in roots:
                    # Readable by nobody: every root field and mutation must say who may.
                    policies[coordinate] = FieldPolicy(coordinate, "nowhere")
                rule = rate_limit_on(definition)
                if rule is not None:
                    if rule.limit < 1 or rule.window < 1:
                        raise PolicyError(f"@rateLimit on {coordinate} needs limit and window >= 1")
                    rate_limits[coordinate] = FieldRateLimit(
                        coordinate,
                        rule.limit,
                        rule.window,
                        rule.per,
                        limit_item(rule.limit, rule.window),
                    )
        return cls(schema, policies, rate_limits)

    def policy(self, coordinate: str) -> FieldPolicy | None:
        """The field's policy; None when only the path to it restricts it."""
        return self._policies.get(coordinate)

    def rate_limit(self, coordinate: str) -> FieldRateLimit | None:
        """The field's @rateLimit, if it has one."""
        return self._rate_limits.get(coordinate)

    def undeclared_root_fields(self) -> list[str]:
        """Root fields (mutations included) without an @auth of their own or of their type."""
        return sorted(
            f"{root.name}.{name}"
            for root in _root_types(self._schema)
            for name in root.fields
            if self._policies[f"{root.name}.{name}"].declared_on == "nowhere"
        )

    def policies_at(self, parent: GraphQLNamedType, field_name: str) -> tuple[FieldPolicy, ...]:
        """The policies a field selected on ``parent`` must meet; on an interface, all of them."""
        key = (parent.name, field_name)
        found = self._by_node_type.get(key)
        if found is None:
            names = [parent.name]
            if isinstance(parent, GraphQLInterfaceType):
                names += [possible.name for possible in self._schema.get_possible_types(parent)]
            candidates = (self._policies.get(f"{name}.{field_name}") for name in names)
            found = tuple(policy for policy in candidates if policy is not None)
            self._by_node_type[key] = found
        return found

    def rows(self) -> list[PolicyRow]:
        """Every field with who may read it, following the paths from the root fields."""
        everyone = frozenset((ANONYMOUS, *ROLES))
        reach: dict[str, frozenset[str]] = {
            root.name: everyone for root in _root_types(self._schema)
        }
        types = _composite_types(self._schema)
        changed = True
        while changed:
            changed = False
            for named in types:
                for name, definition in named.fields.items():
                    readers = self._readers(named, name, reach)
                    returned = get_named_type(definition.type)
                    for target in (returned, *self._possible(returned)):
                        before = reach.get(target.name, frozenset())
                        if not readers <= before:
                            reach[target.name] = before | readers
                            changed = True
        rows = []
        for named in types:
            for name in named.fields:
                coordinate = f"{named.name}.{name}"
                policy = self._policies.get(coordinate)
                readers = self._readers(named, name, reach)
                rows.append(
                    PolicyRow(
                        coordinate,
                        tuple(sorted(readers, key=_principal_order)),
                        policy.declared_on if policy is not None else "path",
                        tuple(sorted(policy.scopes)) if policy is not None else (),
                        self._rate_limits.get(coordinate),
                    )
                )
        return sorted(rows, key=lambda row: row.coordinate)

    def _readers(
        self,
        named: GraphQLObjectType | GraphQLInterfaceType,
        field_name: str,
        reach: Mapping[str, frozenset[str]],
    ) -> frozenset[str]:
        readers = reach.get(named.name, frozenset())
        policy = self._policies.get(f"{named.name}.{field_name}")
        return readers & policy.readers() if policy is not None else readers

    def _possible(self, named: GraphQLNamedType) -> Iterable[GraphQLObjectType]:
        if isinstance(named, GraphQLInterfaceType):
            return self._schema.get_possible_types(named)
        if isinstance(named, GraphQLUnionType):
            return tuple(named.types)
        return ()


def _principal_order(name: str) -> int:
    order = (ANONYMOUS, *ROLES)
    return order.index(name) if name in order else len(order)


def _root_types(schema: GraphQLSchema) -> list[GraphQLObjectType]:
    roots = (schema.query_type, schema.mutation_type, schema.subscription_type)
    return [root for root in roots if root is not None]


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


@dataclass(frozen=True, slots=True)
class _Denials:
    shape: OperationShape
    denied: tuple[tuple[GuardedField, FieldPolicy], ...]


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
        settings: Settings,
        *,
        field_limiter: Callable[[], Limiter | None] | None = None,
        audit: SecurityAudit | None = None,
        memo_size: int | None = None,
    ) -> None:
        self._schema = schema
        self.table = PolicyTable.from_schema(schema)
        anonymous_roles = frozenset(settings.effective_anonymous_roles)
        unknown = sorted(anonymous_roles - frozenset(ROLES))
        if unknown:
            raise PolicyError(f"anonymous_roles names unknown roles: {unknown}")
        self._anonymous = (anonymous_roles, scopes_for(anonymous_roles))
        self._field_limiter = field_limiter
        # Unwired (tests, tools), @rateLimit fields are counted in this process, not ignored.
        self._in_process = RateLimits(settings).fields
        self._rate_limits_enabled = settings.rate_limit_enabled
        self._audit = audit
        self._memo_size = memo_size or max(1, settings.document_cache_size) * 4
        self._shapes: OrderedDict[tuple[str, str | None], OperationShape] = OrderedDict()
        self._denials: OrderedDict[tuple[object, ...], _Denials] = OrderedDict()
        self.walks = 0
        """Operations walked so far: a repeated document must not add to it (tests)."""
        self.decisions = 0
        """Denial lists computed so far: a repeated document and viewer must not add to it."""

    def shape(
        self, prepared: PreparedDocument, operation: OperationDefinitionNode
    ) -> OperationShape:
        """The operation's guarded and rate-limited nodes, walked once per document."""
        key = (prepared.document_hash, operation.name.value if operation.name else None)
        shape = self._shapes.get(key)
        # Node ids key the denials: a document parsed again has new nodes, so a new walk.
        if shape is not None and shape.document is prepared.document:
            self._shapes.move_to_end(key)
            return shape
        self.walks += 1
        shape = walk_operation(self._schema, self.table, prepared.document, operation)
        _remember(self._shapes, key, shape, self._memo_size)
        return shape

    def identity(self, viewer: Viewer) -> tuple[frozenset[str], frozenset[str]]:
        """The roles and scopes the policies see: anonymous_roles for an anonymous viewer."""
        if viewer.is_anonymous:
            return self._anonymous
        return viewer.roles, viewer.scopes

    def denied(
        self, prepared: PreparedDocument, operation: OperationDefinitionNode, viewer: Viewer
    ) -> tuple[tuple[GuardedField, FieldPolicy], ...]:
        """The operation's fields this viewer may not read, with the policy each fails."""
        shape = self.shape(prepared, operation)
        if not shape.guarded:
            return ()
        roles, scopes = self.identity(viewer)
        signed_in = not viewer.is_anonymous
        key = (prepared.document_hash, operation.name.value if operation.name else None)
        memo_key = (*key, roles, scopes, signed_in)
        found = self._denials.get(memo_key)
        if found is not None and found.shape is shape:
            self._denials.move_to_end(memo_key)
            return found.denied
        self.decisions += 1
        denied: list[tuple[GuardedField, FieldPolicy]] = []
        for guarded in shape.guarded:
            failed = next(
                (p for p in guarded.policies if not p.allows(roles, scopes, signed_in=signed_in)),
                None,
            )
            if failed is not None:
                denied.append((guarded, failed))
        _remember(self._denials, memo_key, _Denials(shape, tuple(denied)), self._memo_size)
        return tuple(denied)

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

    async def enforce(
        self,
        prepared: PreparedDocument,
        operation: OperationDefinitionNode,
        context: RequestContext,
    ) -> None:
        """Marks the fields the viewer may not read, and those beyond their rate limit."""
        viewer = context.viewer
        context.read_denial = partial(self.read_denial, viewer=viewer)
        for guarded, policy in self.denied(prepared, operation, viewer):
            context.denied_fields[id(guarded.node)] = _denial(guarded.coordinate, policy, viewer)
            if guarded.sensitive and self._audit is not None:
                self._audit.record(
                    actor=actor_name(viewer.user_id),
                    action=DENIED_ACTION,
                    target=f"field:{guarded.coordinate}",
                    request_id=context.request_id,
                    details={"client": context.client_address},
                )
        shape = self.shape(prepared, operation)
        if not shape.limited or not self._rate_limits_enabled:
            return
        limiter = self._field_limiter() if self._field_limiter else self._in_process
        if limiter is None:
            return
        counted = [
            limited for limited in shape.limited if id(limited.node) not in context.denied_fields
        ]
        # Each count is a Redis round trip: made side by side, not one field after another.
        errors = await asyncio.gather(
            *(self._count(limiter, limited.rule, context) for limited in counted)
        )
        for limited, error in zip(counted, errors, strict=True):
            if error is not None:
                context.denied_fields[id(limited.node)] = error

    async def _count(
        self, limiter: Limiter, rule: FieldRateLimit, context: RequestContext
    ) -> GatewayError | None:
        viewer = context.viewer
        address = context.client_address or "unknown"
        if rule.per == RateLimitPer.VIEWER and viewer.user_id is not None:
            key = f"viewer:{viewer.user_id}"
        else:
            key = f"ip:{address}"
        verdict = await limiter.hit(rule.item, "field", rule.coordinate, key)
        if verdict.allowed:
            return None
        if verdict.unavailable:
            return DependencyUnavailableError(
                f"{rule.coordinate} is rate limited and the limits cannot be counted right now.",
                domain="rate_limit",
                retry_after=float(verdict.reset_seconds),
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
            retry_after=float(verdict.reset_seconds),
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


def _remember(memo: OrderedDict[K, V], key: K, value: V, size: int) -> None:
    memo[key] = value
    if len(memo) > size:
        memo.popitem(last=False)


def format_policy(rows: Iterable[PolicyRow]) -> str:
    """The policy table as ``dataintel schema policy`` prints it: one line per field."""
    header = ("FIELD", "MAY READ", "DECLARED ON", "SCOPES", "RATE LIMIT")
    lines = [header]
    for row in rows:
        limit = row.rate_limit
        lines.append(
            (
                row.coordinate,
                ", ".join(row.readers) or "nobody",
                row.declared_on,
                ", ".join(row.scopes) or "-",
                f"{limit.limit}/{limit.window_seconds}s per {limit.per.value}" if limit else "-",
            )
        )
    widths = [max(len(line[column]) for line in lines) for column in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True))
        + "  "
        + line[-1]
        for line in lines
    )
