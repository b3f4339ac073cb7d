"""Which client documents (trusted documents, the README's examples) a schema would break."""

from __future__ import annotations

import re
from collections.abc import Mapping

from graphql import GraphQLError, GraphQLSchema, parse, validate

from dataintel.gateway.coordinates import coordinates_in, deprecated_coordinates

_GRAPHQL_BLOCK = re.compile(r"```graphql\n(.*?)```", re.DOTALL)


def readme_operations(markdown: str, name: str = "README.md") -> dict[str, str]:
    """The ```graphql blocks of a Markdown page, keyed ``<name>#<n>`` from 1."""
    return {
        f"{name}#{number}": block
        for number, block in enumerate(_GRAPHQL_BLOCK.findall(markdown), start=1)
    }


def document_problems(text: str, schema: GraphQLSchema) -> list[str]:
    """Why a document would not run against the schema; empty when it would."""
    try:
        document = parse(text)
    except GraphQLError as error:
        return [error.message]
    return [error.message for error in validate(schema, document)]


def broken_documents(documents: Mapping[str, str], schema: GraphQLSchema) -> dict[str, list[str]]:
    """Each document that would stop validating against the schema, with the reasons."""
    broken: dict[str, list[str]] = {}
    for key, text in documents.items():
        problems = document_problems(text, schema)
        if problems:
            broken[key] = problems
    return broken


def deprecated_uses(documents: Mapping[str, str], schema: GraphQLSchema) -> dict[str, list[str]]:
    """Each valid document that still uses deprecated coordinates, with those coordinates."""
    deprecated = deprecated_coordinates(schema)
    uses: dict[str, list[str]] = {}
    for key, text in documents.items():
        if not deprecated or document_problems(text, schema):
            continue
        used = sorted(coordinates_in(schema, parse(text)) & deprecated.keys())
        if used:
            uses[key] = used
    return uses
