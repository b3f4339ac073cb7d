"""Groups of how requests are served: the process, HTTP, GraphQL, document limits, rate limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from dataintel.settings.group import SettingsGroup, env


class ServerSettings(SettingsGroup):
    """The process: where it listens, how it starts and stops."""

    environment: Literal["development", "production"] = Field(
        "development", description="production turns off GraphiQL unless graphiql is set."
    )
    host: str = Field("127.0.0.1", description="Address `dataintel serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `dataintel serve` binds to.")
    workers: int = Field(1, ge=1, le=64, description="Uvicorn worker processes.")
    allow_unsafe_production: bool = Field(
        False,
        description="Start in production with anonymous roles, GraphiQL or auto-seed turned on.",
    )
    readiness_timeout_seconds: float = Field(
        2.0, gt=0, description="Budget of each readiness check."
    )
    shutdown_drain_seconds: float = Field(
        5.0,
        ge=0,
        description="After SIGTERM, how long /readyz answers 503 while the server keeps"
        " serving, so load balancers take the replica out before it stops listening.",
    )
    shutdown_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description="Then, how long requests in flight get to finish before they are cancelled.",
    )

    @property
    def production(self) -> bool:
        """Whether the defaults that are unsafe in production are off."""
        return self.environment == "production"


class HttpSettings(SettingsGroup):
    """The HTTP surface: paths, pages, CSRF, REST, bodies and batches."""

    graphql_path: str = "/graphql"
    graphiql: bool | None = Field(
        None, description="Serve GraphiQL to browsers; default on except in production."
    )
    csrf_prevention: bool = Field(
        True, description="GET requests must carry one of csrf_required_headers."
    )
    csrf_required_headers: list[str] = Field(
        ["x-apollo-operation-name", "apollo-require-preflight", "x-requested-with"],
        description="Headers that force a browser preflight; one must be non-empty.",
    )
    rest_enabled: bool = Field(
        True, description="Answer the published operations as REST endpoints under /api/v1."
    )
    rest_operations_path: Path | None = Field(
        None,
        description="A YAML file of operations published as REST endpoints, added to (or"
        " replacing by path) the built-in ones.",
    )
    api_docs: bool = Field(True, description="Serve the API reference page (Swagger UI) at /docs.")
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    batch_enabled: bool = Field(False, description="Accept a JSON array of requests in a POST.")
    batch_max_size: int = Field(10, ge=1, le=100, description="Most requests in one batch.")


class GraphQLSettings(SettingsGroup):
    """Documents and their execution: introspection, persisted queries, caches, loaders."""

    introspection: bool = Field(True, description="Allow schema introspection queries.")
    introspection_roles: list[str] = Field(
        ["analyst", "data_engineer", "admin"],
        description="In production, roles whose viewers may introspect the schema.",
    )
    introspection_anonymous: bool | None = Field(
        None, description="Anonymous viewers may introspect; default on except in production."
    )
    automatic_persisted_queries: bool = Field(
        True, description="Accept Apollo's automatic persisted queries (APQ)."
    )
    persisted_query_ttl_seconds: int = Field(
        86_400, ge=1, description="How long Redis keeps a document registered by APQ."
    )
    persisted_query_cache_size: int = Field(
        1000, ge=0, description="Persisted document texts kept in process, by id."
    )
    trusted_documents_only: bool = Field(
        False, description="Safelist: only documents registered in Redis run."
    )
    document_cache_size: int = Field(
        1000, ge=0, description="Parsed and validated documents kept, by hash."
    )
    prepared_request_cache_size: int = Field(
        1024,
        ge=0,
        description="GET requests kept by their raw query string, and POSTs by their body:"
        " read, persisted document resolved, operation picked and analysed, cost counted"
        " (0 keeps none).",
    )
    prepared_request_max_bytes: int = Field(
        8192,
        ge=0,
        description="Longest raw query string or POST body kept among the prepared requests;"
        " longer ones are prepared on every request.",
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="Time one GraphQL request may take before it answers TIMEOUT."
    )
    loader_batching: bool = Field(
        True, description="Batch loads; off only to measure the per-item path in benchmarks."
    )
    planned_execution: bool = Field(
        True,
        description="Run validated queries from a plan built once per document, breadth-first;"
        " what the plan does not cover runs on graphql-core (see docs/performance.md).",
    )
    loader_max_batch_size: int = Field(500, ge=1, description="Most keys one loader batch sends.")


class LimitsSettings(SettingsGroup):
    """How large a document, an operation, a response and a page may be."""

    max_query_length: int = Field(
        100_000, ge=100, description="Longest query text accepted, in characters."
    )
    max_tokens: int = Field(
        5_000, ge=100, description="Most lexical tokens a document may have (QUERY_TOO_COMPLEX)."
    )
    max_depth: int = Field(
        12, ge=1, description="Deepest field nesting of an operation (introspection excluded)."
    )
    max_aliases: int = Field(30, ge=0, description="Most aliased fields in an operation.")
    max_directives: int = Field(
        50, ge=0, description="Most directives a document may use, counted while parsing."
    )
    max_errors: int = Field(
        20, ge=1, description="Most errors one response carries; the rest are counted only."
    )
    max_fields: int = Field(
        250, ge=1, description="Most field selections in an operation (fragments once)."
    )
    max_root_fields: int = Field(20, ge=1, description="Most root fields in an operation.")
    max_cost: int = Field(
        10_000, ge=1, description="Highest operation cost: field weights times list sizes."
    )
    max_page_size: int = Field(
        100, ge=1, description="Largest `first` or `last` a list accepts; most ids `nodes` takes."
    )


class RateLimitSettings(SettingsGroup):
    """The per-client request limit and the @rateLimit fields."""

    enabled: bool = Field(
        True,
        validation_alias=env("rate_limit_enabled"),
        description="Enforce @rateLimit fields and the per-client request limit.",
    )
    requests: int = Field(
        1200,
        ge=0,
        validation_alias=env("rate_limit_requests"),
        description="Requests one client address may send per window; 0: no limit.",
    )
    window_seconds: int = Field(
        60,
        ge=1,
        validation_alias=env("rate_limit_window_seconds"),
        description="Window of the per-client request limit, in seconds.",
    )
    sync_seconds: float = Field(
        0.1,
        gt=0,
        validation_alias=env("rate_limit_sync_seconds"),
        description="How often each replica adds its local per-client counts to Redis's.",
    )
    local_share: float = Field(
        0.02,
        ge=0,
        le=1,
        validation_alias=env("rate_limit_local_share"),
        description="Share of the per-client limit a replica admits on its own count before"
        " asking Redis; each replica may overshoot by that much (0: ask Redis every request).",
    )
    fail_open: bool = Field(
        True,
        validation_alias=env("rate_limit_fail_open"),
        description="While Redis is down, count @rateLimit fields in process (else refuse them).",
    )

    @property
    def limits_clients(self) -> bool:
        """Whether each client address is held to a number of requests per window."""
        return self.enabled and self.requests > 0
