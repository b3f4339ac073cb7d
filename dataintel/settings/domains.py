"""Groups of the domains: auth, analytics, catalogs, privacy, jobs and export."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from dataintel.settings.group import SettingsGroup, env

JwtAlgorithm = Literal[
    "HS256", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"
]
"""Signature algorithms a bearer token may use; 'none' is never one of them."""


class AuthSettings(SettingsGroup):
    """Who a request is: anonymous roles, the gateway's tokens, an identity provider's keys."""

    anonymous_roles: list[str] | None = Field(
        None,
        description="Roles @auth grants anonymous requests; default viewer and analyst,"
        " none in production.",
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
    identity_cache_seconds: float = Field(
        30.0,
        ge=0,
        le=300,
        validation_alias=env("auth_identity_cache_seconds"),
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


class AnalyticsSettings(SettingsGroup):
    """The analytics catalog and its rollups."""

    catalog_path: Path | None = Field(
        None,
        validation_alias=env("analytics_catalog_path"),
        description="A YAML file of measures and dimensions added to the built-in catalog.",
    )
    rollups: bool = Field(
        True,
        validation_alias=env("analytics_rollups"),
        description="Answer analytics queries from current rollups when they cover them"
        " (false: always from the source's rows).",
    )
    rollup_refresh_seconds: float = Field(
        0.0,
        ge=0,
        validation_alias=env("analytics_rollup_refresh_seconds"),
        description="How often each server refreshes the rollups' changed partitions; 0: never.",
    )


class CatalogSettings(SettingsGroup):
    """YAML files added to the built-in feature views, quality checks and comparisons."""

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


class PrivacySettings(SettingsGroup):
    """Where personal data lives, how erasures hash it, and subject requests' deadlines."""

    map_path: Path | None = Field(
        None,
        validation_alias=env("privacy_map_path"),
        description="A YAML privacy map whose datasets are added to (or replace by name) the"
        " built-in ones (docs/gdpr.md).",
    )
    hmac_key: SecretStr | None = Field(
        None,
        validation_alias=env("privacy_hmac_key"),
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


class JobsSettings(SettingsGroup):
    """Background jobs: where they run, how many at once, heartbeats and sweeps."""

    queue: Literal["redis", "embedded"] | None = Field(
        None,
        validation_alias=env("jobs_queue"),
        description="Where jobs run: redis (SAQ; `dataintel worker` processes run them) or"
        " embedded (the serving process, not surviving a restart); default: redis when"
        " redis_url is set.",
    )
    heartbeat_timeout_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=env("jobs_heartbeat_timeout_seconds"),
        description="A running job without a heartbeat for this long lost its worker: it is"
        " retried, or failed after its last attempt.",
    )
    concurrency: int = Field(
        4,
        ge=1,
        le=256,
        validation_alias=env("jobs_concurrency"),
        description="Jobs one worker (or the embedded pool) runs at once.",
    )
    queue_name: str = Field(
        "dataintel-jobs",
        min_length=1,
        validation_alias=env("jobs_queue_name"),
        description="Name of the SAQ queue in Redis.",
    )
    heartbeat_seconds: float = Field(
        2.0,
        gt=0,
        validation_alias=env("jobs_heartbeat_seconds"),
        description="How often a running job writes its heartbeat and sees cancels.",
    )
    sweep_seconds: int = Field(
        5,
        ge=0,
        validation_alias=env("jobs_sweep_seconds"),
        description="How often a process looks for jobs whose worker died (stale heartbeat)"
        " and expires old results; 0: never in this process.",
    )
    shutdown_grace_seconds: int = Field(
        30,
        ge=0,
        validation_alias=env("jobs_shutdown_grace_seconds"),
        description="On SIGTERM, how long a worker lets running jobs finish before handing"
        " them back to the queue.",
    )

    def runs_on_redis(self, redis_url: str | None) -> bool:
        """Whether jobs go through SAQ on Redis to worker processes."""
        if self.queue is not None:
            return self.queue == "redis"
        return redis_url is not None


class ExportSettings(SettingsGroup):
    """Export files: where they live, how they are cut, how long they and their links last."""

    dir: Path = Field(
        Path("var/exports"),
        validation_alias=env("export_dir"),
        description="Where export files and other job artifacts live (a shared volume when"
        " several replicas and workers run).",
    )
    retention_seconds: int = Field(
        7 * 86_400,
        ge=60,
        validation_alias=env("export_retention_seconds"),
        description="How long a finished job's files are kept.",
    )
    part_rows: int = Field(
        1_000_000,
        ge=1,
        validation_alias=env("export_part_rows"),
        description="Rows per export part when the request does not say.",
    )
    max_part_rows: int = Field(
        10_000_000,
        ge=1,
        validation_alias=env("export_max_part_rows"),
        description="The most rows an export request may put in one part.",
    )
    fetch_rows: int = Field(
        5_000,
        ge=1,
        le=1_000_000,
        validation_alias=env("export_fetch_rows"),
        description="Rows an export fetches from the store's cursor at a time (its memory).",
    )
    timeout_seconds: float = Field(
        6 * 3600.0,
        gt=0,
        validation_alias=env("export_timeout_seconds"),
        description="Longest one export attempt may run.",
    )
    url_lifetime_seconds: int = Field(
        3600,
        ge=10,
        le=7 * 86_400,
        validation_alias=env("export_url_lifetime_seconds"),
        description="How long a signed download URL stays valid.",
    )
    url_secret: SecretStr | None = Field(
        None,
        validation_alias=env("export_url_secret"),
        description="HMAC key of signed download URLs; default: derived from jwt_secret (a"
        " random one per process when neither is set, fine only for one process).",
    )
    public_base_url: str | None = Field(
        None,
        description="Base URL clients reach the gateway at (https://api.example.com), for"
        " download links; default: relative links.",
    )
