"""What the gateway knows about one operation of a prepared document, found once.

The cost plan, the policy shape (guarded and rate-limited fields), the @cacheControl policy
and the schema coordinates of an operation do not depend on the request: they are worked
out the first time the operation runs and kept on the PreparedDocument itself, so they are
evicted with it and can never belong to another parse of the text. The structure limits
and the introspection mark are facts of the whole document, found while preparing it
(documents.py), before validation.

Per-request decisions that depend only on who asks (which fields a set of roles and scopes
may not read) are memoized on the analysis too: ``OperationAnalysis.denials``.

A new document rule that needs no request goes here: a field of OperationAnalysis, built
in ``DocumentAnalyzer.analyze``; its per-request check is a pipeline stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import GraphQLSchema, OperationDefinitionNode

from dataintel.gateway.cost import CostPlan, cost_plan
from dataintel.gateway.documents import PreparedDocument
from dataintel.gateway.policy import FieldPolicy, GuardedField, OperationShape, walk_operation
from dataintel.gateway.policy_table import PolicyTable
from dataintel.gateway.response_cache import CachePolicy, operation_policy

Identity = tuple[frozenset[str], frozenset[str], bool]
"""Roles, scopes, and whether the viewer is signed in: all a field policy looks at."""


@dataclass(slots=True, eq=False)
class OperationAnalysis:
    """One operation of a prepared document: everything decided without the request."""

    operation: OperationDefinitionNode
    name: str | None
    cost: CostPlan
    shape: OperationShape
    cache_policy: CachePolicy
    coordinates: frozenset[str]
    """The schema coordinates it selects (schema usage counts)."""
    denials: dict[Identity, tuple[tuple[GuardedField, FieldPolicy], ...]] = field(
        default_factory=dict
    )
    """The guarded fields an identity may not read, with the policy each fails (memo)."""


class DocumentAnalyzer:
    """Builds an operation's analysis on first use and keeps it on its prepared document."""

    def __init__(self, schema: GraphQLSchema, table: PolicyTable) -> None:
        self._schema = schema
        self._table = table
        self.built = 0
        """Analyses built so far: a repeated document must not add to it (tests)."""

    def analyze(
        self, prepared: PreparedDocument, operation: OperationDefinitionNode
    ) -> OperationAnalysis:
        """The analysis of one of the document's operations."""
        name = operation.name.value if operation.name else None
        found = prepared.analyses.get(name)
        if found is not None:
            return found
        self.built += 1
        document = prepared.document
        analysis = OperationAnalysis(
            operation=operation,
            name=name,
            cost=cost_plan(self._schema, document, operation),
            shape=walk_operation(self._schema, self._table, document, operation),
            cache_policy=operation_policy(self._schema, document, operation),
            coordinates=prepared.coordinates.get(name, frozenset()),
        )
        prepared.analyses[name] = analysis
        return analysis
