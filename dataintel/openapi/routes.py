"""The plain HTTP routes beside GraphQL, described one entry per route.

A new route adds one ``RouteDescription`` to ``plain_routes``; the OpenAPI document, the
/docs page and schemathesis pick it up from there. Published GraphQL operations are not
listed here: their descriptions are derived from their documents (``document.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dataintel.settings import Settings

JsonSchema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseDescription:
    """One status of a route: what it means and its body by media type."""

    description: str
    content: Mapping[str, JsonSchema] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Response header name to its description (a string value)."""


@dataclass(frozen=True, slots=True)
class RouteDescription:
    """One plain route as OpenAPI describes it."""

    path: str
    method: str
    operation_id: str
    summary: str
    description: str
    tags: tuple[str, ...]
    responses: Mapping[int, ResponseDescription]
    parameters: tuple[JsonSchema, ...] = ()
    """OpenAPI parameter objects (path, query, header)."""
    security: tuple[Mapping[str, list[str]], ...] = ({},)
    """Alternatives; ``{}`` means no credential is needed."""


_BREAKER: JsonSchema = {
    "type": ["object", "null"],
    "properties": {
        "state": {"type": "string"},
        "failures": {"type": "integer"},
        "failMax": {"type": "integer"},
        "retryAfterSeconds": {"type": ["number", "null"]},
        "changedAt": {"type": ["string", "null"], "format": "date-time"},
    },
}
_READINESS: JsonSchema = {
    "type": "object",
    "required": ["status", "failed", "degraded", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "degraded", "unavailable"]},
        "failed": {"type": "array", "items": {"type": "string"}},
        "degraded": {"type": "array", "items": {"type": "string"}},
        "checks": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string"},
                    "state": {"type": "string"},
                    "required": {"type": "boolean"},
                    "latencyMs": {"type": ["number", "null"]},
                    "detail": {"type": ["string", "null"]},
                    "breaker": _BREAKER,
                },
            },
        },
    },
}
_TEXT = {"type": "string"}


def plain_routes(settings: Settings) -> list[RouteDescription]:
    """Every plain route this configuration serves, in the order the document lists them."""
    routes = [
        RouteDescription(
            path="/healthz",
            method="GET",
            operation_id="liveness",
            summary="Liveness probe",
            description="200 while the process answers; nothing else is checked.",
            tags=("probes",),
            responses={
                200: ResponseDescription(
                    "The process is alive.",
                    {
                        "application/json": {
                            "type": "object",
                            "required": ["status"],
                            "properties": {"status": {"const": "ok"}},
                        }
                    },
                )
            },
        ),
        RouteDescription(
            path="/readyz",
            method="GET",
            operation_id="readiness",
            summary="Readiness probe",
            description="200 when every required dependency answers (a dependency that is not"
            " required only degrades it); 503 naming the ones that do not.",
            tags=("probes",),
            responses={
                200: ResponseDescription("Ready (or degraded).", {"application/json": _READINESS}),
                503: ResponseDescription(
                    "A required dependency is down.", {"application/json": _READINESS}
                ),
            },
        ),
        RouteDescription(
            path="/openapi.json",
            method="GET",
            operation_id="openapi",
            summary="This document",
            description="The OpenAPI 3.1 description of the REST endpoints, generated from the"
            " code; `dataintel openapi print` prints the same.",
            tags=("docs",),
            responses={200: ResponseDescription("The document.", {"application/json": {}})},
        ),
    ]
    routes.append(_job_file_route())
    if settings.http.api_docs:
        routes.append(
            RouteDescription(
                path="/docs",
                method="GET",
                operation_id="apiReference",
                summary="API reference page",
                description="Swagger UI over this document, served from the gateway's own"
                " files (503 naming the command to run while they are not built).",
                tags=("docs",),
                responses={
                    200: ResponseDescription("The page.", {"text/html": _TEXT}),
                    503: ResponseDescription(
                        "The page's files are not built.", {"text/html": _TEXT}
                    ),
                },
            )
        )
    if settings.observability.metrics_enabled:
        token = settings.observability.metrics_bearer_token is not None
        responses = {
            200: ResponseDescription(
                "The Prometheus text exposition.",
                {"text/plain": _TEXT},
            )
        }
        if token:
            responses[401] = ResponseDescription(
                "The bearer token is missing or wrong.", {"text/plain": _TEXT}
            )
        routes.append(
            RouteDescription(
                path="/metrics",
                method="GET",
                operation_id="metrics",
                summary="Prometheus metrics",
                description="RED per route and operation, cache, breaker, limiter, loader, pool"
                " and job series (docs/observability.md).",
                tags=("observability",),
                responses=responses,
                security=({"metricsToken": []},) if token else ({},),
            )
        )
    return routes


_DOWNLOAD_REFUSAL: JsonSchema = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_JOB_FILE_TYPES = (
    "text/csv",
    "application/x-ndjson",
    "application/vnd.apache.parquet",
    "application/gzip",
    "application/zip",
)


def _job_file_route() -> RouteDescription:
    """A job's file (an export part, a subject access package) by its signed URL."""
    binary: JsonSchema = {"type": "string", "format": "binary"}
    files = dict.fromkeys(_JOB_FILE_TYPES, binary)
    refusal = {"application/json": _DOWNLOAD_REFUSAL}
    return RouteDescription(
        path="/exports/{jobId}/parts/{number}",
        method="GET",
        operation_id="jobFile",
        summary="A job's file, by signed URL",
        description="One part of a finished export, or a subject access package: the URL"
        " comes from the GraphQL API (`Job.files.downloadUrl`,"
        " `SubjectRequest.package.downloadUrl`), signed and expiring; the signature is the"
        " credential. Range requests answer 206; the ETag is the part's SHA-256"
        " (docs/export.md).",
        tags=("jobs",),
        parameters=(
            {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "number", "in": "path", "required": True, "schema": {"type": "string"}},
            {
                "name": "expires",
                "in": "query",
                "required": True,
                "description": "When the URL stops working (Unix seconds), as issued.",
                "schema": {"type": "string"},
            },
            {
                "name": "signature",
                "in": "query",
                "required": True,
                "description": "The HMAC of the job, part and expiry, as issued.",
                "schema": {"type": "string"},
            },
            {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
        ),
        responses={
            200: ResponseDescription("The whole file.", files),
            206: ResponseDescription("The requested range of the file.", files),
            304: ResponseDescription("The file has not changed (If-None-Match).", {}),
            403: ResponseDescription("The URL expired or was altered.", refusal),
            404: ResponseDescription("No such job, part, or the job has no files.", refusal),
            410: ResponseDescription("The job's files were deleted after retention.", refusal),
            416: ResponseDescription("The range is outside the file.", {"text/plain": _TEXT}),
        },
    )
