"""Groups of what the services run over: the store, Redis, the cache, observability."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from dataintel.settings.group import SettingsGroup, env

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/dataintel.db"

_PLAIN_SCHEMES = {
    "postgres://": "postgresql+asyncpg://",
    "postgresql://": "postgresql+asyncpg://",
    "sqlite:///": "sqlite+aiosqlite:///",
}


class StoreSettings(SettingsGroup):
    """The SQL store: where it is, its pool, its budgets and breaker, migrations and seed."""

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy async DSN: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    database_pool_size: int = Field(10, ge=1, le=200)
    database_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="Driver limit on getting a connection and on running one statement, also"
        " inside bulk blocks; the SQLite busy timeout.",
    )
    call_timeout_seconds: float = Field(
        3.0,
        gt=0,
        validation_alias=env("store_call_timeout_seconds"),
        description="Time budget of one store call before it answers TIMEOUT.",
    )
    batch_timeout_seconds: float = Field(
        300.0,
        gt=0,
        validation_alias=env("store_batch_timeout_seconds"),
        description="Time budget of one bulk store block: feature materialization, a quality"
        " check or a reconciliation over whole tables, a run's results.",
    )
    breaker_failures: int = Field(
        5,
        ge=1,
        validation_alias=env("store_breaker_failures"),
        description="Consecutive store failures that open the store's breaker.",
    )
    breaker_reset_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=env("store_breaker_reset_seconds"),
        description="Seconds the store's breaker stays open before a trial call.",
    )
    auto_migrate: bool = Field(True, description="Run migrations when the server starts.")
    auto_seed: bool | None = Field(
        None, description="Seed the demo data when the store is empty; default on in development."
    )
    seed_scale: int = Field(1, ge=1, le=1000, description="Scale of the demo data seeded.")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Hosting providers hand out postgres:// URLs; the gateway only speaks async drivers.
        for plain, driver in _PLAIN_SCHEMES.items():
            if value.startswith(plain):
                return driver + value[len(plain) :]
        return value

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file behind database_url, or None for another store."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        return Path(self.database_url[len(prefix) :])


class RedisSettings(SettingsGroup):
    """Redis: where it is, its pool, its budget and breaker, and the namespace of its keys."""

    url: str | None = Field(
        None,
        validation_alias=env("redis_url"),
        description="redis://host:port/db; unset runs without Redis.",
    )
    call_timeout_seconds: float = Field(
        0.25,
        gt=0,
        validation_alias=env("redis_call_timeout_seconds", "redis_timeout_seconds"),
        description="Time budget of one Redis call (the cache then goes without); the"
        " client's connect and socket timeouts are twice it.",
    )
    max_connections: int = Field(
        50,
        ge=1,
        validation_alias=env("redis_max_connections"),
        description="Connections in the Redis pool.",
    )
    required_for_readiness: bool = Field(
        False,
        validation_alias=env("redis_required_for_readiness"),
        description="Fail /readyz while Redis is down; off: serve from the local cache.",
    )
    breaker_failures: int = Field(
        3,
        ge=1,
        validation_alias=env("redis_breaker_failures"),
        description="Consecutive Redis failures that open the Redis breaker.",
    )
    breaker_reset_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=env("redis_breaker_reset_seconds"),
        description="Seconds the Redis breaker stays open before a trial call.",
    )
    key_prefix: str = Field(
        "dataintel",
        min_length=1,
        validation_alias=env("cache_key_prefix"),
        description="Prefix of every key kept in Redis: cache entries and tags, rate-limit"
        " counts, token revocations.",
    )

    @property
    def socket_timeout_seconds(self) -> float:
        """The client's connect and socket timeout: a backstop behind the call budget.

        Twice the budget, so a budgeted call always ends on its budget (and is counted by the
        breaker) while a call made outside one (a listener, the CLI) still cannot hang.
        """
        return 2 * self.call_timeout_seconds


class CacheSettings(SettingsGroup):
    """The two-level cache (in process, then Redis) and the response cache."""

    enabled: bool = Field(
        True,
        validation_alias=env("cache_enabled"),
        description="Serve reads through the two-level cache.",
    )
    memory_entries: int = Field(
        10_000,
        ge=0,
        validation_alias=env("cache_memory_entries"),
        description="Entries the in-process cache level holds at most.",
    )
    memory_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        validation_alias=env("cache_memory_bytes"),
        description="Bytes (serialized) the in-process level holds at most.",
    )
    ttl_seconds: float = Field(
        60.0,
        ge=0,
        validation_alias=env("cache_ttl_seconds"),
        description="How long cached entities, pages and counts are fresh.",
    )
    features_ttl_seconds: float = Field(
        300.0,
        ge=0,
        validation_alias=env("cache_features_ttl_seconds"),
        description="How long cached online feature values are fresh.",
    )
    analytics_ttl_seconds: float = Field(
        300.0,
        ge=0,
        validation_alias=env("cache_analytics_ttl_seconds"),
        description="How long cached analytics results are fresh.",
    )
    stale_seconds: float = Field(
        3600.0,
        ge=0,
        validation_alias=env("cache_stale_seconds"),
        description="How long past its TTL an entry may stand in for a failed load.",
    )
    tag_poll_seconds: float = Field(
        1.0,
        ge=0,
        validation_alias=env("cache_tag_poll_seconds"),
        description="Without Redis: how often the store's tag versions are read; 0: never.",
    )
    invalidation_heartbeat_seconds: float = Field(
        1.0,
        gt=0,
        validation_alias=env("cache_invalidation_heartbeat_seconds"),
        description="With Redis: a silent invalidation feed is pinged after this long, and"
        " declared lost (in-process entries revalidated) when the ping goes unanswered as long.",
    )
    response_cache_enabled: bool = Field(
        True, description="Cache whole responses whose fields all carry @cacheControl hints."
    )


def _otel(option: str) -> AliasChoices:
    # OpenTelemetry's standard variables (OTEL_*) are read too, so a collector's usual
    # configuration works unchanged; each also has a DATAINTEL_ name.
    return AliasChoices(option, f"DATAINTEL_{option.upper()}", option.upper())


class ObservabilitySettings(SettingsGroup):
    """Logs, traces, metrics and schema usage."""

    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON lines otherwise."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    otel_exporter_otlp_endpoint: str | None = Field(
        None,
        validation_alias=_otel("otel_exporter_otlp_endpoint"),
        description="OTLP collector base URL; traces are exported only when it (or the"
        " traces endpoint) is set.",
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None,
        validation_alias=_otel("otel_exporter_otlp_traces_endpoint"),
        description="Full URL traces are sent to (overrides the base endpoint).",
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf",
        validation_alias=_otel("otel_exporter_otlp_protocol"),
        description="OTLP transport; grpc needs opentelemetry-exporter-otlp-proto-grpc.",
    )
    otel_service_name: str = Field(
        "dataintel",
        validation_alias=_otel("otel_service_name"),
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
        validation_alias=_otel("otel_traces_sampler"),
        description="Which traces are recorded; parent-based: a sampled caller is followed.",
    )
    otel_traces_sampler_arg: float = Field(
        0.1,
        ge=0,
        le=1,
        validation_alias=_otel("otel_traces_sampler_arg"),
        description="Ratio of new traces sampled by the ratio samplers.",
    )
    otel_sdk_disabled: bool = Field(
        False,
        validation_alias=_otel("otel_sdk_disabled"),
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
    schema_usage_enabled: bool = Field(
        True, description="Count the schema coordinates requests select, per client."
    )
    schema_usage_flush_seconds: float = Field(
        10.0, gt=0, description="How often the counts are added to Redis (and spread in process)."
    )
