"""The OpenAPI document of the REST endpoints, generated from the code."""

from __future__ import annotations

from typing import Any

import orjson
from graphql import GraphQLSchema

from dataintel.gateway.published_operations import PublishedOperation, load_published_operations
from dataintel.openapi.document import build_openapi
from dataintel.settings import Settings

__all__ = ["build_openapi", "openapi_document", "published_operations", "render_openapi"]


def published_operations(
    settings: Settings, schema: GraphQLSchema
) -> tuple[PublishedOperation, ...]:
    """The operations this configuration publishes (none when REST is off)."""
    if not settings.http.rest_enabled:
        return ()
    return load_published_operations(schema, settings.http.rest_operations_path)


def openapi_document(settings: Settings, schema: GraphQLSchema) -> dict[str, Any]:
    """The document for this configuration, as /openapi.json and the CLI give it."""
    return build_openapi(settings, schema, published_operations(settings, schema))


def render_openapi(document: dict[str, Any]) -> bytes:
    """The document's bytes: the same for /openapi.json and `dataintel openapi print`."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
