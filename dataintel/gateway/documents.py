"""Parsed and validated documents, cached by the hash of their text."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLSchema,
    OperationDefinitionNode,
    specified_rules,
    validate,
)
from graphql.validation import NoSchemaIntrospectionCustomRule

from dataintel.errors import BadUserInputError, QueryTooComplexError
from dataintel.gateway.coordinates import NO_COORDINATES, coordinates_by_operation
from dataintel.gateway.introspection import uses_introspection
from dataintel.gateway.limits import DocumentLimits, parse_document
from dataintel.gateway.request import DocumentRejected
from dataintel.settings import GraphQLSettings, LimitsSettings

if TYPE_CHECKING:
    from dataintel.gateway.analysis import OperationAnalysis


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    """A document that parsed and validated against the schema, with its operations."""

    document_hash: str
    document: DocumentNode
    operations: Mapping[str | None, OperationDefinitionNode]
    uses_introspection: bool = False
    """Whether it selects __schema or __type, checked against the viewer per request."""
    coordinates: Mapping[str | None, frozenset[str]] = field(default_factory=lambda: NO_COORDINATES)
    """The schema coordinates each operation selects, by operation name (usage counts)."""
    analyses: dict[str | None, OperationAnalysis] = field(default_factory=dict, compare=False)
    """Each operation's analysis by name, built on first use (analysis.py); it lives and is
    evicted with this document, so it always describes these very nodes."""

    def operation(self, operation_name: str | None) -> OperationDefinitionNode | None:
        """The operation that will run, or None when the name picks none."""
        if operation_name is None:
            if len(self.operations) != 1:
                return None
            return next(iter(self.operations.values()))
        return self.operations.get(operation_name)


def document_hash(query: str) -> str:
    """The SHA-256 hex digest that keys a document, as Apollo's persisted queries use it."""
    return hashlib.sha256(query.encode()).hexdigest()


class DocumentCache:
    """Parses and validates each distinct document once; keeps the newest ``size`` of them."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        size: int,
        max_length: int,
        introspection: bool,
        limits: DocumentLimits | None = None,
        max_errors: int = 20,
    ) -> None:
        self._schema = schema
        self._size = size
        self._max_length = max_length
        self._limits = limits or DocumentLimits()
        self._max_errors = max_errors
        # Rules are built once: a new rule class per request would defeat the cache.
        rules: list[type[ASTValidationRule]] = list(specified_rules)
        if not introspection:
            rules.append(NoSchemaIntrospectionCustomRule)
        self._rules = tuple(rules)
        self._documents: OrderedDict[str, PreparedDocument] = OrderedDict()

    @classmethod
    def from_settings(
        cls, schema: GraphQLSchema, graphql: GraphQLSettings, limits: LimitsSettings
    ) -> DocumentCache:
        """The cache and limits the settings configure."""
        return cls(
            schema,
            size=graphql.document_cache_size,
            max_length=limits.max_query_length,
            introspection=graphql.introspection,
            limits=DocumentLimits.from_settings(limits),
            max_errors=limits.max_errors,
        )

    def __len__(self) -> int:
        return len(self._documents)

    def get(self, query: str, *, hide_suggestions: bool = False) -> PreparedDocument:
        """The prepared document for this text; raises DocumentRejected when it is invalid.

        Only valid documents are cached, so leaving suggestions out of the errors of an
        invalid one needs no separate cache entry per viewer.
        """
        if len(query) > self._max_length:
            raise DocumentRejected(
                [
                    QueryTooComplexError(
                        "The query text is too long.",
                        details={
                            "limit": "length",
                            "measured": len(query),
                            "allowed": self._max_length,
                        },
                    )
                ]
            )
        key = document_hash(query)
        prepared = self._documents.get(key)
        if prepared is not None:
            self._documents.move_to_end(key)
            return prepared
        prepared = self._prepare(key, query, hide_suggestions)
        if self._size:
            self._documents[key] = prepared
            if len(self._documents) > self._size:
                self._documents.popitem(last=False)
        return prepared

    def _prepare(self, key: str, query: str, hide_suggestions: bool) -> PreparedDocument:
        if not query.strip():
            raise DocumentRejected([BadUserInputError("The query is empty.")])
        # Token and structure limits come before validation, the expensive step.
        document = parse_document(query, self._limits)
        errors = validate(
            self._schema,
            document,
            self._rules,
            max_errors=self._max_errors,
            hide_suggestions=hide_suggestions,
        )
        if errors:
            raise DocumentRejected(list(errors))
        operations = {
            (definition.name.value if definition.name else None): definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        }
        return PreparedDocument(
            key,
            document,
            operations,
            uses_introspection(document),
            coordinates_by_operation(self._schema, document, operations),
        )
