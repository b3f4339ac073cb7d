"""The OpenAPI 3.1 document, generated from the routes table and the published operations.

``GET /openapi.json`` and ``dataintel openapi print`` both call ``build_openapi``, so the two
cannot differ. A published operation's parameters come from its variables' GraphQL types
(with the bounds its entry adds), its response from its selection set over the schema, and
the descriptions from the schema's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import GraphQLNonNull as NonNull
from graphql import GraphQLObjectType, GraphQLSchema, OperationType, is_list_type, parse

from dataintel import __version__
from dataintel.errors import ERROR_CODE_DESCRIPTIONS, ErrorCode
from dataintel.gateway.published_operations import (
    REST_PREFIX,
    PublishedOperation,
    PublishedVariable,
)
from dataintel.openapi.json_schema import JsonSchema, SchemaComponents
from dataintel.openapi.routes import RouteDescription, plain_routes
from dataintel.settings import Settings

OPENAPI_VERSION = "3.1.0"
PROBLEM_JSON = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Paths the per-client request limit never counts (http/rate_limit.py EXEMPT_PATHS).
_UNLIMITED = frozenset({"/healthz", "/readyz", "/metrics"})

_GRAPHQL_ERROR: JsonSchema = {
    "type": "object",
    "description": "A GraphQL error as /graphql would answer it.",
    "required": ["message", "extensions"],
    "properties": {
        "message": {"type": "string"},
        "path": {"type": "array", "items": {"type": ["string", "integer"]}},
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"line": {"type": "integer"}, "column": {"type": "integer"}},
            },
        },
        "extensions": {
            "type": "object",
            "required": ["code", "requestId"],
            "properties": {
                "code": {"$ref": "#/components/schemas/ErrorCode"},
                "requestId": {"type": "string"},
                "retryable": {"type": "boolean"},
                "retryAfter": {"type": "number"},
                "domain": {"type": "string"},
            },
        },
    },
}
_PROBLEM: JsonSchema = {
    "type": "object",
    "description": "RFC 9457 problem details, with the gateway's error code and request id."
    " When `data` is present the response is partial: what could be read is there, and"
    " each field named by a path in `errors` is null in it.",
    "required": ["type", "title", "status", "detail", "code", "requestId", "errors"],
    "properties": {
        "type": {
            "type": "string",
            "description": "urn:dataintel:problem: followed by the code.",
        },
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "The first error's message."},
        "instance": {"type": "string", "description": "The request's path."},
        "code": {"$ref": "#/components/schemas/ErrorCode"},
        "requestId": {"type": "string", "description": "Also in the X-Request-ID header."},
        "retryable": {"type": "boolean"},
        "retryAfter": {"type": "number", "description": "Seconds to wait before retrying."},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/GraphQLError"}},
        "data": {
            "type": ["object", "null"],
            "description": "The operation's partial data, when it ran.",
        },
    },
}
_STATUS_MEANING = {
    400: "Malformed parameters or body, or a value the operation rejects (BAD_USER_INPUT,"
    " QUERY_TOO_COMPLEX).",
    401: "The credential is bad, expired or revoked (UNAUTHENTICATED), or required.",
    403: "The viewer's roles do not allow a field (FORBIDDEN).",
    404: "What was asked for does not exist (NOT_FOUND).",
    413: "The body is too large.",
    415: "The body is not application/json.",
    429: "Too many requests (RATE_LIMITED); see Retry-After.",
    500: "An unexpected error (INTERNAL); the request id is logged.",
    503: "A dependency is down (DEPENDENCY_UNAVAILABLE); retryable, see Retry-After.",
    504: "The request or a dependency did not finish in time (TIMEOUT).",
}


def build_openapi(
    settings: Settings, schema: GraphQLSchema, operations: Sequence[PublishedOperation]
) -> dict[str, Any]:
    """The whole document for this configuration."""
    components = SchemaComponents(schema)
    paths: dict[str, dict[str, Any]] = {}
    for route in plain_routes(settings):
        paths.setdefault(route.path, {})[route.method.lower()] = _plain(route, settings)
    if settings.http.rest_enabled:
        for operation in operations:
            described = _published(operation, schema, components, settings)
            paths.setdefault(_openapi_path(operation), {})[operation.method.lower()] = described
    schemas: dict[str, JsonSchema] = {
        "Problem": _PROBLEM,
        "GraphQLError": _GRAPHQL_ERROR,
        "ErrorCode": {
            "type": "string",
            "enum": [code.value for code in ErrorCode],
            "description": "; ".join(
                f"{code.value}: {text}" for code, text in ERROR_CODE_DESCRIPTIONS.items()
            ),
        },
        **dict(sorted(components.schemas.items())),
    }
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "dataintel",
            "version": __version__,
            "description": "The REST side of the dataintel gateway: probes, metrics and the"
            " trusted GraphQL operations published under /api/v1 (docs/rest.md). Everything"
            " else is GraphQL at " + settings.http.graphql_path + ", described by its schema.",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": _security_schemes(settings)},
        "tags": _tags(paths),
    }


def _openapi_path(operation: PublishedOperation) -> str:
    return REST_PREFIX + operation.path


def _security_schemes(settings: Settings) -> dict[str, Any]:
    schemes: dict[str, Any] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A token from POST /api/v1/auth/token (the login mutation), an"
            " identity provider's JWT, or an API key (di_...). A bad credential is 401,"
            " never anonymous.",
        },
        "apiKey": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An API key (di_...); send it here or as a bearer token, not both.",
        },
    }
    if (
        settings.observability.metrics_enabled
        and settings.observability.metrics_bearer_token is not None
    ):
        schemes["metricsToken"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "DATAINTEL_METRICS_BEARER_TOKEN.",
        }
    return schemes


def _tags(paths: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    names = sorted({tag for item in paths.values() for op in item.values() for tag in op["tags"]})
    return [{"name": name} for name in names]


def _plain(route: RouteDescription, settings: Settings) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, response in sorted(route.responses.items()):
        entry: dict[str, Any] = {"description": response.description}
        if response.content:
            entry["content"] = {
                media_type: {"schema": schema} for media_type, schema in response.content.items()
            }
        if response.headers:
            entry["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in response.headers.items()
            }
        responses[str(status)] = entry
    if _limited(route.path, settings) and "429" not in responses:
        responses["429"] = _problem(429)
    described: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": route.description,
        "tags": list(route.tags),
        "responses": responses,
        "security": [dict(alternative) for alternative in route.security],
    }
    if route.parameters:
        described["parameters"] = list(route.parameters)
    return described


def _limited(path: str, settings: Settings) -> bool:
    return (
        settings.rate_limit.enabled and settings.rate_limit.requests > 0 and path not in _UNLIMITED
    )


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": _STATUS_MEANING[status],
        "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
    }


def _published(
    operation: PublishedOperation,
    schema: GraphQLSchema,
    components: SchemaComponents,
    settings: Settings,
) -> dict[str, Any]:
    definition = operation.operation()
    root = (
        schema.query_type
        if operation.operation_type == OperationType.QUERY
        else schema.mutation_type
    )
    assert isinstance(root, GraphQLObjectType)
    data = components.selection(parse(operation.document), root, definition.selection_set)
    is_query = operation.operation_type == OperationType.QUERY
    ok_headers: dict[str, Any] = {
        "Cache-Control": {
            "description": "From the operation's @cacheControl: public for anonymous"
            " requests, private with a credential, no-store when not cacheable.",
            "schema": {"type": "string"},
        }
    }
    if is_query:
        ok_headers["ETag"] = {
            "description": "Send it back in If-None-Match: the same data answers 304.",
            "schema": {"type": "string"},
        }
    responses: dict[str, Any] = {
        "200": {
            "description": "The operation's data.",
            "headers": ok_headers,
            "content": {"application/json": {"schema": data}},
        }
    }
    if is_query:
        responses["304"] = {
            "description": "The data has not changed since the ETag in If-None-Match.",
            "headers": {"ETag": ok_headers["ETag"], "Cache-Control": ok_headers["Cache-Control"]},
        }
    statuses = [400, 401, 403, 404, 429, 500, 503, 504]
    if not is_query:
        statuses[1:1] = [413, 415]
    for status in sorted(statuses):
        responses[str(status)] = _problem(status)
    described: dict[str, Any] = {
        "operationId": operation.operation_name,
        "summary": operation.summary,
        "description": _description(operation),
        "tags": list(operation.tags) or ["operations"],
        "security": [{}, {"bearerAuth": []}, {"apiKey": []}],
        "responses": responses,
    }
    parameters = [
        _parameter(variable, components)
        for variable in operation.variables
        if variable.location != "body"
    ]
    if is_query:
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "An ETag from an earlier answer: 304 when the data is the same.",
                "schema": {"type": "string"},
            }
        )
    if parameters:
        described["parameters"] = parameters
    body = [variable for variable in operation.variables if variable.location == "body"]
    if not is_query:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _body_schema(body, components)}},
        }
    return described


def _description(operation: PublishedOperation) -> str:
    parts = [operation.description] if operation.description else []
    parts.append(
        f"Runs the trusted GraphQL {operation.operation_type.value} `{operation.operation_name}`"
        " through the same pipeline as /graphql:\n\n```graphql\n"
        + operation.document.strip()
        + "\n```"
    )
    return "\n\n".join(parts)


def _parameter(variable: PublishedVariable, components: SchemaComponents) -> dict[str, Any]:
    # Text parameters are never null: an absent one leaves the variable to its default.
    schema = {**components.input(variable.type, allow_null=False), **variable.constraints}
    if is_list_type(variable.type) or (
        isinstance(variable.type, NonNull) and is_list_type(variable.type.of_type)
    ):
        schema["items"] = _not_null(schema["items"])
    parameter: dict[str, Any] = {
        "name": variable.name,
        "in": variable.location,
        "required": variable.required,
        "schema": schema,
    }
    if variable.description:
        parameter["description"] = variable.description
    if schema.get("type") == "array":
        parameter["style"] = "form"
        parameter["explode"] = True
    return parameter


def _not_null(schema: JsonSchema) -> JsonSchema:
    kind = schema.get("type")
    if isinstance(kind, list):
        remaining = [item for item in kind if item != "null"]
        return {**schema, "type": remaining[0] if len(remaining) == 1 else remaining}
    if "anyOf" in schema:
        kept = [item for item in schema["anyOf"] if item != {"type": "null"}]
        rest = {key: value for key, value in schema.items() if key != "anyOf"}
        return {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
    return schema


def _body_schema(
    variables: Sequence[PublishedVariable], components: SchemaComponents
) -> JsonSchema:
    properties: dict[str, JsonSchema] = {}
    for variable in variables:
        property_schema = {**components.input(variable.type), **variable.constraints}
        if variable.description:
            property_schema["description"] = variable.description
        properties[variable.name] = property_schema
    schema: JsonSchema = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    required = [variable.name for variable in variables if variable.required]
    if required:
        schema["required"] = required
    return schema
