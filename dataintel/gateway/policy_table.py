"""@auth and @rateLimit as a table keyed by schema coordinate, read once from the schema.

A field's own @auth, else its type's; a root field with neither is readable by nobody.
``dataintel schema policy`` prints it (``PolicyTable.rows``, ``format_policy``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from graphql import (
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)
from limits import RateLimitItem

from dataintel.directives.auth import Auth
from dataintel.directives.lookup import auth_on, rate_limit_on
from dataintel.directives.rate_limit import RateLimitPer
from dataintel.gateway.rate_limiting import limit_item
from dataintel.rbac import ALL_SCOPES, ROLE_SCOPES, ROLES

ANONYMOUS = "anonymous"
"""How the policy table and ``dataintel schema policy`` name a viewer without a credential."""

DeclaredOn = Literal["field", "type", "nowhere"]


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
