"""Trusted operations published as REST endpoints, declared in YAML and checked at start.

Each entry names a path under the REST prefix and a document holding one named query or
mutation. A query answers ``GET`` with its variables from the path and the query string; a
mutation answers ``POST`` with its variables from a JSON body. The documents are the
operator's own (like a trusted documents manifest), validated against the schema when the
gateway starts, so a typo stops the start rather than a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml
from graphql import (
    GraphQLError,
    GraphQLInputType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    is_non_null_type,
    parse,
    specified_rules,
    type_from_ast,
    validate,
)

BUILT_IN_OPERATIONS = "published_operations.yaml"
REST_PREFIX = "/api/v1"
"""Where the published operations answer: ``{REST_PREFIX}{operation.path}``."""
_PATH = re.compile(r"(/[a-z0-9][a-z0-9._-]*|/\{[A-Za-z_][A-Za-z0-9_]*\})+")
_PATH_PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# JSON Schema keywords an entry may add to a variable's derived schema (bounds the GraphQL
# type cannot say, such as a page size's maximum); the endpoint enforces them as well.
_CONSTRAINTS = frozenset(
    {"minimum", "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems"}
)


class PublishedOperationError(Exception):
    """A published operations file that cannot be served; the message names the entry."""


@dataclass(frozen=True, slots=True)
class PublishedVariable:
    """One variable of a published operation, where it is read from, and its bounds."""

    name: str
    type: GraphQLInputType
    location: str
    """path, query (GET) or body (POST)."""
    has_default: bool
    description: str | None = None
    constraints: Mapping[str, Any] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        """Whether a request must send it: non-null without a default, or in the path."""
        return self.location == "path" or (is_non_null_type(self.type) and not self.has_default)


@dataclass(frozen=True, slots=True)
class PublishedOperation:
    """A trusted operation answered at ``{prefix}{path}``."""

    path: str
    operation_name: str
    document: str
    operation_type: OperationType
    variables: tuple[PublishedVariable, ...]
    summary: str
    description: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def method(self) -> str:
        """GET for a query, POST for a mutation."""
        return "GET" if self.operation_type == OperationType.QUERY else "POST"

    def operation(self) -> OperationDefinitionNode:
        """The operation's definition in its (already validated) document."""
        for definition in parse(self.document).definitions:
            if (
                isinstance(definition, OperationDefinitionNode)
                and definition.name is not None
                and definition.name.value == self.operation_name
            ):
                return definition
        raise PublishedOperationError(f"{self.path}: no operation {self.operation_name}")


def load_published_operations(
    schema: GraphQLSchema, path: Path | None = None
) -> tuple[PublishedOperation, ...]:
    """The built-in operations, with those of ``path`` added or replacing them by path."""
    package = resources.files("dataintel.gateway")
    sources = [(package.joinpath(BUILT_IN_OPERATIONS).read_text("utf-8"), BUILT_IN_OPERATIONS)]
    if path is not None:
        try:
            sources.append((path.read_text("utf-8"), str(path)))
        except OSError as error:
            raise PublishedOperationError(
                f"cannot read the published operations {path}: {error}"
            ) from None
    by_path: dict[str, PublishedOperation] = {}
    for text, origin in sources:
        for operation in _read(schema, text, origin):
            by_path[operation.path] = operation
    return tuple(sorted(by_path.values(), key=lambda operation: operation.path))


def _read(schema: GraphQLSchema, text: str, origin: str) -> Iterable[PublishedOperation]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PublishedOperationError(f"{origin} is not valid YAML: {error}") from None
    entries = data.get("operations") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise PublishedOperationError(f"{origin}: expected a list under 'operations'")
    for position, entry in enumerate(entries):
        label = f"{origin}, operation {position}"
        if not isinstance(entry, dict):
            raise PublishedOperationError(f"{label}: expected a mapping")
        yield _operation(schema, entry, label)


def _operation(schema: GraphQLSchema, entry: Mapping[str, Any], label: str) -> PublishedOperation:
    path, name, document = entry.get("path"), entry.get("operation"), entry.get("document")
    if not isinstance(path, str) or _PATH.fullmatch(path) is None:
        raise PublishedOperationError(
            f"{label}: 'path' must look like /orders/recent or /customers/{{tier}}/features"
        )
    label = f"{label} ({path})"
    if not isinstance(name, str) or not isinstance(document, str):
        raise PublishedOperationError(f"{label}: 'operation' and 'document' must be strings")
    try:
        parsed = parse(document)
    except GraphQLError as error:
        raise PublishedOperationError(f"{label}: {error.message}") from None
    errors = validate(schema, parsed, specified_rules)
    if errors:
        raise PublishedOperationError(f"{label}: {'; '.join(e.message for e in errors)}")
    operation = next(
        (
            definition
            for definition in parsed.definitions
            if isinstance(definition, OperationDefinitionNode)
            and definition.name is not None
            and definition.name.value == name
        ),
        None,
    )
    if operation is None:
        raise PublishedOperationError(f"{label}: the document has no operation named {name}")
    if operation.operation == OperationType.SUBSCRIPTION:
        raise PublishedOperationError(f"{label}: subscriptions cannot be published")
    in_path = _PATH_PARAMETER.findall(path)
    body_or_query = "query" if operation.operation == OperationType.QUERY else "body"
    described = entry.get("variables") or {}
    if not isinstance(described, dict):
        raise PublishedOperationError(f"{label}: 'variables' must be a mapping")
    variables: list[PublishedVariable] = []
    for definition in operation.variable_definitions or ():
        variable = definition.variable.name.value
        graphql_type = type_from_ast(schema, definition.type)
        assert graphql_type is not None  # the document validated
        about = described.get(variable) or {}
        constraints = {key: value for key, value in about.items() if key in _CONSTRAINTS}
        unknown = set(about) - _CONSTRAINTS - {"description"}
        if unknown:
            raise PublishedOperationError(
                f"{label}: variable {variable} has unknown keys {sorted(unknown)}"
            )
        location = "path" if variable in in_path else body_or_query
        if location == "path" and not is_non_null_type(graphql_type):
            raise PublishedOperationError(f"{label}: path variable {variable} must be non-null")
        variables.append(
            PublishedVariable(
                variable,
                cast(GraphQLInputType, graphql_type),
                location,
                definition.default_value is not None,
                about.get("description"),
                constraints,
            )
        )
    missing = set(in_path) - {variable.name for variable in variables}
    if missing:
        raise PublishedOperationError(
            f"{label}: the path names unknown variables {sorted(missing)}"
        )
    unused = set(described) - {variable.name for variable in variables}
    if unused:
        raise PublishedOperationError(f"{label}: 'variables' names unknown ones {sorted(unused)}")
    summary = entry.get("summary")
    if not isinstance(summary, str) or not summary:
        raise PublishedOperationError(f"{label}: a one-line 'summary' is required")
    tags = entry.get("tags") or []
    return PublishedOperation(
        path=path,
        operation_name=name,
        document=document,
        operation_type=operation.operation,
        variables=tuple(variables),
        summary=summary,
        description=entry.get("description"),
        tags=tuple(str(tag) for tag in tags),
    )
