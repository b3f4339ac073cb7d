"""The gateway's one settings object, read from the environment (prefix ``DATAINTEL_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/dataintel.db"


class Settings(BaseSettings):
    """Every option of the gateway; documented one by one in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="DATAINTEL_", env_file=None, extra="ignore")

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
    auto_seed: bool = Field(True, description="Seed the demo data when the store is empty.")
    seed_scale: int = Field(1, ge=1, le=1000, description="Scale of the demo data seeded.")

    redis_url: str | None = Field(
        None, description="redis://host:port/db; unset runs without Redis."
    )
    redis_timeout_seconds: float = Field(0.5, gt=0, description="Connect and socket timeout.")
    redis_max_connections: int = Field(50, ge=1, description="Connections in the Redis pool.")

    analytics_catalog_path: Path | None = Field(
        None, description="A YAML file of measures and dimensions added to the built-in catalog."
    )
    feature_views_path: Path | None = Field(
        None, description="A YAML file of feature views added to the built-in ones."
    )

    graphql_path: str = "/graphql"
    graphiql: bool | None = Field(
        None, description="Serve GraphiQL to browsers; default on except in production."
    )
    introspection: bool = Field(True, description="Allow schema introspection queries.")
    max_body_bytes: int = Field(
        1_000_000, ge=1024, description="Largest request body accepted (413 beyond)."
    )
    max_query_length: int = Field(
        100_000, ge=100, description="Longest query text accepted, in characters."
    )
    document_cache_size: int = Field(
        1000, ge=0, description="Parsed and validated documents kept, by hash."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="Time one GraphQL request may take before it answers TIMEOUT."
    )
    max_page_size: int = Field(100, ge=1, description="Largest `first` a list accepts.")
    loader_batching: bool = Field(
        True, description="Batch loads; off only to measure the per-item path in benchmarks."
    )
    loader_max_batch_size: int = Field(500, ge=1, description="Most keys one loader batch sends.")
    readiness_timeout_seconds: float = Field(
        2.0, gt=0, description="Budget of each readiness check."
    )

    @property
    def graphiql_enabled(self) -> bool:
        """Whether browsers get the GraphiQL page."""
        if self.graphiql is not None:
            return self.graphiql
        return self.environment != "production"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file behind database_url, or None for another store."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        return Path(self.database_url[len(prefix) :])
