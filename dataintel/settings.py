"""The gateway's one settings object, read from the environment (prefix ``DATAINTEL_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/dataintel.db"

_PLAIN_SCHEMES = {
    "postgres://": "postgresql+asyncpg://",
    "postgresql://": "postgresql+asyncpg://",
    "sqlite:///": "sqlite+aiosqlite:///",
}

JwtAlgorithm = Literal[
    "HS256", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"
]
"""Signature algorithms a bearer token may use; 'none' is never one of them."""


class Settings(BaseSettings):
    """Every option of the gateway; documented one by one in docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="DATAINTEL_", env_file=None, extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "production"] = Field(
        "development", description="production turns off GraphiQL unless graphiql is set."
    )
    host: str = Field("127.0.0.1", description="Address `dataintel serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `dataintel serve` binds to.")
    workers: int = Field(1, ge=1, le=64, description="Uvicorn worker processes.")
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON lines otherwise."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy async DSN: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    database_pool_size: int = Field(10, ge=1, le=200)
    database_timeout_seconds: float = Field(
        5.0, gt=0, description="Time allowed to get a connection and to run one statement."
    )
    auto_migrate: bool = Field(True, description="Run migrations when the server starts.")
    auto_seed: bool | None = Field(
        None, description="Seed the demo data when the store is empty; default on in development."
    )
    allow_unsafe_production: bool = Field(
        False,
        description="Start in production with anonymous roles, GraphiQL or auto-seed turned on.",
    )
    seed_scale: int = Field(1, ge=1, le=1000, description="Scale of the demo data seeded.")

    redis_url: str | None = Field(
        None, description="redis://host:port/db; unset runs without Redis."
    )
    redis_timeout_seconds: float = Field(0.5, gt=0, description="Connect and socket timeout.")
    redis_max_connections: int = Field(50, ge=1, description="Connections in the Redis pool.")
    redis_required_for_readiness: bool = Field(
        False, description="Fail /readyz while Redis is down; off: serve from the local cache."
    )

    store_call_timeout_seconds: float = Field(
        3.0, gt=0, description="Time budget of one store call before it answers TIMEOUT."
    )
    store_batch_timeout_seconds: float = Field(
        300.0,
        gt=0,
        description="Time budget of one bulk store block: feature materialization, a quality"
        " check or a reconciliation over whole tables, a run's results.",
    )
    store_breaker_failures: int = Field(
        5, ge=1, description="Consecutive store failures that open the store's breaker."
    )
    store_breaker_reset_seconds: float = Field(
        10.0, gt=0, description="Seconds the store's breaker stays open before a trial call."
    )
    redis_call_timeout_seconds: float = Field(
        0.25, gt=0, description="Time budget of one Redis call (the cache then goes without)."
    )
    redis_breaker_failures: int = Field(
        3, ge=1, description="Consecutive Redis failures that open the Redis breaker."
    )
    redis_breaker_reset_seconds: float = Field(
        5.0, gt=0, description="Seconds the Redis breaker stays open before a trial call."
    )

    cache_enabled: bool = Field(True, description="Serve reads through the two-level cache.")
    cache_memory_entries: int = Field(
        10_000, ge=0, description="Entries the in-process cache level holds at most."
    )
    cache_memory_bytes: int = Field(
        64 * 1024 * 1024, ge=0, description="Bytes (serialized) the in-process level holds at most."
    )
    cache_ttl_seconds: float = Field(
        60.0, ge=0, description="How long cached entities, pages and counts are fresh."
    )
    cache_features_ttl_seconds: float = Field(
        300.0, ge=0, description="How long cached online feature values are fresh."
    )
    cache_analytics_ttl_seconds: float = Field(
        300.0, ge=0, description="How long cached analytics results are fresh."
    )
    cache_stale_seconds: float = Field(
        3600.0, ge=0, description="How long past its TTL an entry may stand in for a failed load."
    )
    cache_tag_poll_seconds: float = Field(
        1.0,
        ge=0,
        description="Without Redis: how often the store's tag versions are read; 0: never.",
    )
    cache_key_prefix: str = Field(
        "dataintel", min_length=1, description="Prefix of every cache key and tag in Redis."
    )
    cache_invalidation_heartbeat_seconds: float = Field(
        1.0,
        gt=0,
        description="With Redis: a silent invalidation feed is pinged after this long, and"
        " declared lost (in-process entries revalidated) when the ping goes unanswered as long.",
    )
    response_cache_enabled: bool = Field(
        True, description="Cache whole responses whose fields all carry @cacheControl hints."
    )

    analytics_catalog_path: Path | None = Field(
        None, description="A YAML file of measures and dimensions added to the built-in catalog."
    )
    analytics_rollups: bool = Field(
        True,
        description="Answer analytics queries from current rollups when they cover them"
        " (false: always from the source's rows).",
    )
    analytics_rollup_refresh_seconds: float = Field(
        0.0,
        ge=0,
        description="How often each server refreshes the rollups' changed partitions; 0: never.",
    )
    feature_views_path: Path | None = Field(
        None, description="A YAML file of feature views added to the built-in ones."
    )
    quality_checks_path: Path | None = Field(
        None,
        description="A YAML file of data quality checks added to (or replacing by id) the"
        " built-in ones.",
    )
    reconciliation_comparisons_path: Path | None = Field(
        None,
        description="A YAML file of reconciliation comparisons added to (or replacing by id)"
        " the built-in ones.",
    )

    privacy_map_path: Path | None = Field(
        None,
        description="A YAML privacy map whose datasets are added to (or replace by name) the"
        " built-in ones (docs/gdpr.md).",
    )
    privacy_hmac_key: SecretStr | None = Field(
        None,
        description="Key of the keyed hash an erasure writes (hmac strategy); unset: derived"
        " from jwt_secret, else (development only) a public development key.",
    )
    subject_request_due_months: int = Field(
        1, ge=1, le=12, description="Calendar months after receipt a subject request is due."
    )
    subject_request_max_extension_months: int = Field(
        2, ge=0, le=12, description="Most calendar months extendDeadline may add in all."
    )
    subject_request_job_timeout_seconds: float = Field(
        3600.0, gt=0, description="Longest one attempt of an access or erasure job may run."
    )
    subject_request_reason_max_length: int = Field(
        2000, ge=1, description="Longest reason (request, denial, extension) accepted."
    )

    graphql_path: str = "/graphql"
    graphiql: bool | None = Field(
        None, description="Serve GraphiQL to browsers; default on except in production."
    )
    introspection: bool = Field(True, description="Allow schema introspection queries.")
    introspection_roles: list[str] = Field(
        ["analyst", "data_engineer", "admin"],
        description="In production, roles whose viewers may introspect the schema.",
    )
    introspection_anonymous: bool | None = Field(
        None, description="Anonymous viewers may introspect; default on except in production."
    )
    csrf_prevention: bool = Field(
        True, description="GET requests must carry one of csrf_required_headers."
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
    csrf_required_headers: list[str] = Field(
        ["x-apollo-operation-name", "apollo-require-preflight", "x-requested-with"],
        description="Headers that force a browser preflight; one must be non-empty.",
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
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted (413 beyond)."
    )
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
    batch_enabled: bool = Field(False, description="Accept a JSON array of requests in a POST.")
    batch_max_size: int = Field(10, ge=1, le=100, description="Most requests in one batch.")
    anonymous_roles: list[str] | None = Field(
        None,
        description="Roles @auth grants anonymous requests; default viewer and analyst,"
        " none in production.",
    )
    rate_limit_enabled: bool = Field(
        True, description="Enforce @rateLimit fields and the per-client request limit."
    )
    rate_limit_requests: int = Field(
        1200, ge=0, description="Requests one client address may send per window; 0: no limit."
    )
    rate_limit_window_seconds: int = Field(
        60, ge=1, description="Window of the per-client request limit, in seconds."
    )
    rate_limit_sync_seconds: float = Field(
        0.1,
        gt=0,
        description="How often each replica adds its local per-client counts to Redis's.",
    )
    rate_limit_local_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Share of the per-client limit a replica admits on its own count before"
        " asking Redis; each replica may overshoot by that much (0: ask Redis every request).",
    )
    rate_limit_fail_open: bool = Field(
        True,
        description="While Redis is down, count @rateLimit fields in process (else refuse them).",
    )
    document_cache_size: int = Field(
        1000, ge=0, description="Parsed and validated documents kept, by hash."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="Time one GraphQL request may take before it answers TIMEOUT."
    )
    max_page_size: int = Field(
        100, ge=1, description="Largest `first` or `last` a list accepts; most ids `nodes` takes."
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

    jwt_secret: SecretStr | None = Field(
        None, description="HS256 key of the gateway's own tokens; required in production."
    )
    jwt_issuer: str = Field("dataintel", description="iss of the gateway's own tokens.")
    jwt_audience: str = Field("dataintel", description="aud every bearer token must name.")
    jwt_lifetime_seconds: int = Field(
        3600, ge=60, le=86_400, description="How long a token from login stays valid."
    )
    jwt_leeway_seconds: float = Field(
        30.0, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    jwt_algorithms: list[JwtAlgorithm] = Field(
        ["HS256", "RS256", "ES256"], description="Algorithms a bearer token may be signed with."
    )
    jwt_roles_claim: str = Field(
        "roles", description="Claim holding an identity provider token's roles."
    )
    jwks_path: Path | None = Field(None, description="A JWKS file of an identity provider.")
    jwks_url: str | None = Field(None, description="The JWKS URL of an identity provider.")
    jwks_issuer: str | None = Field(
        None, description="iss of identity provider tokens; default jwt_issuer."
    )
    jwks_cache_seconds: float = Field(
        300.0, gt=0, description="How long fetched JWKS keys are used before a refetch."
    )
    jwks_timeout_seconds: float = Field(3.0, gt=0, description="Timeout of one JWKS fetch.")
    auth_identity_cache_seconds: float = Field(
        30.0,
        ge=0,
        le=300,
        description="How long a bearer token's user (active, roles) is cached; changes are"
        " pushed to every replica through Redis, the TTL bounds staleness without it; 0: off.",
    )
    audit_queue_size: int = Field(
        10_000,
        ge=1,
        description="Audit entries waiting for the writer; past it, entries that no caller"
        " awaits are dropped and counted.",
    )
    audit_batch_size: int = Field(
        500, ge=1, description="Most audit entries the writer commits in one transaction."
    )

    schema_usage_enabled: bool = Field(
        True, description="Count the schema coordinates requests select, per client."
    )
    schema_usage_flush_seconds: float = Field(
        10.0, gt=0, description="How often the counts are added to Redis (and spread in process)."
    )

    # OpenTelemetry's standard variables (OTEL_*) are read here too, so a collector's usual
    # configuration works unchanged; each also has a DATAINTEL_ name.
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "otel_exporter_otlp_endpoint",
            "DATAINTEL_OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        description="OTLP collector base URL; traces are exported only when it (or the"
        " traces endpoint) is set.",
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "otel_exporter_otlp_traces_endpoint",
            "DATAINTEL_OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        description="Full URL traces are sent to (overrides the base endpoint).",
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf",
        validation_alias=AliasChoices(
            "otel_exporter_otlp_protocol",
            "DATAINTEL_OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        description="OTLP transport; grpc needs opentelemetry-exporter-otlp-proto-grpc.",
    )
    otel_service_name: str = Field(
        "dataintel",
        validation_alias=AliasChoices(
            "otel_service_name", "DATAINTEL_OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME"
        ),
        description="service.name of the exported spans.",
    )
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = Field(
        "parentbased_traceidratio",
        validation_alias=AliasChoices(
            "otel_traces_sampler", "DATAINTEL_OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER"
        ),
        description="Which traces are recorded; parent-based: a sampled caller is followed.",
    )
    otel_traces_sampler_arg: float = Field(
        0.1,
        ge=0,
        le=1,
        validation_alias=AliasChoices(
            "otel_traces_sampler_arg",
            "DATAINTEL_OTEL_TRACES_SAMPLER_ARG",
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        description="Ratio of new traces sampled by the ratio samplers.",
    )
    otel_sdk_disabled: bool = Field(
        False,
        validation_alias=AliasChoices(
            "otel_sdk_disabled", "DATAINTEL_OTEL_SDK_DISABLED", "OTEL_SDK_DISABLED"
        ),
        description="Turn tracing off even when an endpoint is set.",
    )

    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics on /metrics.")
    metrics_bearer_token: SecretStr | None = Field(
        None, description="When set, /metrics answers only requests bearing this token."
    )
    metrics_max_operation_names: int = Field(
        100,
        ge=0,
        description="Distinct operation names labelled per process; later ones count as other.",
    )
    metrics_multiprocess_dir: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "metrics_multiprocess_dir",
            "DATAINTEL_METRICS_MULTIPROCESS_DIR",
            "PROMETHEUS_MULTIPROC_DIR",
        ),
        description="prometheus-client's multiprocess directory; `dataintel serve` makes one"
        " for --workers > 1.",
    )

    jobs_queue: Literal["redis", "embedded"] | None = Field(
        None,
        description="Where jobs run: redis (SAQ; `dataintel worker` processes run them) or"
        " embedded (the serving process, not surviving a restart); default: redis when"
        " redis_url is set.",
    )
    jobs_heartbeat_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A running job without a heartbeat for this long lost its worker: it is"
        " retried, or failed after its last attempt.",
    )
    jobs_concurrency: int = Field(
        4, ge=1, le=256, description="Jobs one worker (or the embedded pool) runs at once."
    )
    jobs_queue_name: str = Field(
        "dataintel-jobs", min_length=1, description="Name of the SAQ queue in Redis."
    )
    jobs_heartbeat_seconds: float = Field(
        2.0, gt=0, description="How often a running job writes its heartbeat and sees cancels."
    )
    jobs_sweep_seconds: int = Field(
        5,
        ge=0,
        description="How often a process looks for jobs whose worker died (stale heartbeat)"
        " and expires old results; 0: never in this process.",
    )
    jobs_shutdown_grace_seconds: int = Field(
        30,
        ge=0,
        description="On SIGTERM, how long a worker lets running jobs finish before handing"
        " them back to the queue.",
    )
    export_dir: Path = Field(
        Path("var/exports"),
        description="Where export files and other job artifacts live (a shared volume when"
        " several replicas and workers run).",
    )
    export_retention_seconds: int = Field(
        7 * 86_400, ge=60, description="How long a finished job's files are kept."
    )
    export_part_rows: int = Field(
        1_000_000, ge=1, description="Rows per export part when the request does not say."
    )
    export_max_part_rows: int = Field(
        10_000_000, ge=1, description="The most rows an export request may put in one part."
    )
    export_fetch_rows: int = Field(
        5_000,
        ge=1,
        le=1_000_000,
        description="Rows an export fetches from the store's cursor at a time (its memory).",
    )
    export_timeout_seconds: float = Field(
        6 * 3600.0, gt=0, description="Longest one export attempt may run."
    )
    export_url_lifetime_seconds: int = Field(
        3600, ge=10, le=7 * 86_400, description="How long a signed download URL stays valid."
    )
    export_url_secret: SecretStr | None = Field(
        None,
        description="HMAC key of signed download URLs; default: derived from jwt_secret (a"
        " random one per process when neither is set, fine only for one process).",
    )
    public_base_url: str | None = Field(
        None,
        description="Base URL clients reach the gateway at (https://api.example.com), for"
        " download links; default: relative links.",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Hosting providers hand out postgres:// URLs; the gateway only speaks async drivers.
        for plain, driver in _PLAIN_SCHEMES.items():
            if value.startswith(plain):
                return driver + value[len(plain) :]
        return value

    @property
    def jobs_use_redis(self) -> bool:
        """Whether jobs go through SAQ on Redis to worker processes."""
        if self.jobs_queue is not None:
            return self.jobs_queue == "redis"
        return self.redis_url is not None

    @property
    def seeds_demo_data(self) -> bool:
        """Whether `dataintel serve` seeds an empty store with the demo data."""
        if self.auto_seed is not None:
            return self.auto_seed
        return self.environment == "development"

    @property
    def graphiql_enabled(self) -> bool:
        """Whether browsers get the GraphiQL page."""
        if self.graphiql is not None:
            return self.graphiql
        return self.environment != "production"

    @property
    def effective_anonymous_roles(self) -> list[str]:
        """The roles @auth grants anonymous requests."""
        if self.anonymous_roles is not None:
            return self.anonymous_roles
        return [] if self.environment == "production" else ["viewer", "analyst"]

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file behind database_url, or None for another store."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        return Path(self.database_url[len(prefix) :])
