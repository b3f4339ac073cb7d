"""The application factory: ``create_app(settings)`` builds everything, importing starts nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from dataintel import __version__
from dataintel.cache import TwoLevelCache
from dataintel.cache.invalidation_feed import InvalidationFeed
from dataintel.cache.redis_connection import create_redis
from dataintel.cache.tag_poller import TagPoller
from dataintel.collector import freeze_startup_objects
from dataintel.gateway.analysis import DocumentAnalyzer
from dataintel.gateway.coordinates import deprecated_coordinates
from dataintel.gateway.cost import OperationCost
from dataintel.gateway.documents import DocumentCache
from dataintel.gateway.persisted_queries import PersistedQueries
from dataintel.gateway.pipeline import PipelineObserver, RequestPipeline
from dataintel.gateway.policy import FieldGate
from dataintel.gateway.rate_limiting import RateLimits
from dataintel.gateway.response_cache import ResponseCache
from dataintel.gateway.security_audit import SecurityAudit
from dataintel.http.api_docs import api_docs, api_docs_static_mount
from dataintel.http.authentication import Authenticator
from dataintel.http.downloads import download_endpoint
from dataintel.http.drain import DrainingConnectionMiddleware
from dataintel.http.graphiql import graphiql_page, graphiql_static_mount
from dataintel.http.graphql_endpoint import GraphQLEndpoint
from dataintel.http.openapi_endpoint import openapi_endpoint
from dataintel.http.probes import liveness, readiness_endpoint
from dataintel.http.rate_limit import RequestRateLimitMiddleware
from dataintel.http.rest_endpoint import RestEndpoint
from dataintel.job_system import build_job_system, download_signer
from dataintel.observability.logging import configure_logging, get_logger
from dataintel.observability.metrics import GatewayMetrics, MetricsMiddleware, metrics_endpoint
from dataintel.observability.pipeline_observers import MetricsObserver, TracingObserver
from dataintel.observability.request_context import RequestContextMiddleware
from dataintel.observability.tracing import Tracing
from dataintel.openapi import build_openapi, published_operations
from dataintel.platform import Platform, build_platform
from dataintel.schema import build_schema, compiled_schema
from dataintel.services import Services
from dataintel.services.analytics import SqlAnalyticsService
from dataintel.services.analytics import load_catalog as load_analytics_catalog
from dataintel.services.analytics.refresher import RollupRefresher
from dataintel.services.artifacts import FilesystemArtifactStorage
from dataintel.services.audit import SqlAuditService
from dataintel.services.auth import SqlAuthService
from dataintel.services.cached import (
    CachedAnalyticsService,
    CachedCommerceService,
    CachedFeatureService,
    CacheLifetimes,
)
from dataintel.services.commerce import SqlCommerceService
from dataintel.services.features import SqlFeatureService, load_catalog
from dataintel.services.job_kinds import JobResources, export_service
from dataintel.services.jobs import EmbeddedDispatcher, JobMaintenance
from dataintel.services.privacy import JobServiceDispatcher, SqlSubjectRequestService
from dataintel.services.privacy.kinds import request_limits
from dataintel.services.quality import SqlQualityService, load_checks
from dataintel.services.reconciliation import SqlReconciliationService, load_comparisons
from dataintel.services.schema_usage import SchemaUsageRecorder, SchemaUsageService
from dataintel.services.status import DependencyProbe, ProbingStatusService, RedisProbe, StoreProbe
from dataintel.services.token_revocations import (
    MemoryTokenRevocations,
    RedisTokenRevocations,
    TokenRevocations,
)
from dataintel.services.tokens import TokenCodec
from dataintel.settings import Settings
from dataintel.store.engine import create_engine

_log = get_logger("dataintel.app")


@dataclass(slots=True)
class Runtime:
    """What the app opens at startup and closes at shutdown."""

    engine: AsyncEngine
    redis: Redis | None
    services: Services
    platform: Platform


def build_services(
    settings: Settings,
    engine: AsyncEngine,
    redis: Redis | None,
    platform: Platform | None = None,
    schema_usage: SchemaUsageService | None = None,
) -> Services:
    """The services registry over the app's connections, their breakers and the cache."""
    platform = platform or build_platform(settings, engine, redis)
    probes: list[DependencyProbe] = [StoreProbe(engine)]
    if redis is not None:
        probes.append(RedisProbe(redis, required=settings.redis_required_for_readiness))
    store, cache = platform.store, platform.cache
    lifetimes = CacheLifetimes(
        entities_seconds=settings.cache_ttl_seconds,
        features_seconds=settings.cache_features_ttl_seconds,
        analytics_seconds=settings.cache_analytics_ttl_seconds,
        stale_seconds=settings.cache_stale_seconds,
    )
    # First: a production start without a signing secret names that secret, not a later
    # consequence of it (the privacy key derives from it).
    tokens = TokenCodec.from_settings(settings)
    audit = SqlAuditService(store)
    revocations: TokenRevocations = (
        MemoryTokenRevocations()
        if redis is None
        else RedisTokenRevocations(redis, platform.dependencies["redis"], settings.cache_key_prefix)
    )
    analytics = CachedAnalyticsService(
        SqlAnalyticsService(
            store,
            load_analytics_catalog(settings.analytics_catalog_path),
            rollups=settings.analytics_rollups,
        ),
        cache,
        lifetimes,
    )
    storage = FilesystemArtifactStorage(settings.export_dir)
    resources = JobResources(settings, engine, store, storage, audit, analytics, cache)
    jobs = build_job_system(settings, resources)
    privacy = SqlSubjectRequestService(store, audit, request_limits(settings))
    privacy.dispatcher = JobServiceDispatcher(jobs.service)
    return Services(
        status=ProbingStatusService(
            __version__, probes, settings.readiness_timeout_seconds, platform.dependencies
        ),
        commerce=CachedCommerceService(SqlCommerceService(store), cache, lifetimes),
        features=CachedFeatureService(
            SqlFeatureService(store, load_catalog(settings.feature_views_path)), cache, lifetimes
        ),
        analytics=analytics,
        auth=SqlAuthService(store, audit, tokens, revocations=revocations),
        audit=audit,
        schema_usage=schema_usage if schema_usage is not None else SchemaUsageRecorder({}),
        reconciliation=SqlReconciliationService(
            store, load_comparisons(settings.reconciliation_comparisons_path)
        ),
        quality=SqlQualityService(store, load_checks(settings.quality_checks_path)),
        jobs=jobs.service,
        artifacts=storage,
        downloads=download_signer(settings),
        privacy=privacy,
        export=export_service(resources),
    )


async def _bounded(step: str, closing: Awaitable[object], seconds: float) -> None:
    """Awaits one shutdown step for at most ``seconds``; past that it is logged and left."""
    try:
        async with asyncio.timeout(seconds):
            await closing
    except TimeoutError:
        _log.warning("shutdown step timed out", step=step, seconds=seconds)


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app: routes, middleware and the lifespan that opens the store and Redis."""
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    schema = build_schema()
    graphql_schema = compiled_schema(schema)
    runtime: Runtime | None = None
    tracing = Tracing.from_settings(settings)
    metrics = GatewayMetrics(settings) if settings.metrics_enabled else None

    def services() -> Services:
        if runtime is None:
            raise RuntimeError("the app's lifespan has not started")
        return runtime.services

    def cache() -> TwoLevelCache | None:
        return runtime.platform.cache if runtime is not None else None

    rate_limits = RateLimits(settings)
    schema_usage = SchemaUsageRecorder(
        deprecated_coordinates(graphql_schema), enabled=settings.schema_usage_enabled
    )
    security_audit = SecurityAudit(lambda: runtime.services.audit if runtime else None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal runtime
        engine = create_engine(settings)
        redis = create_redis(settings)
        tracing.instrument_engine(engine)
        tracing.instrument_redis(redis)
        platform = build_platform(settings, engine, redis)
        if metrics is not None:
            metrics.watch_pool(engine)
            platform.cache.observer = metrics.on_cache
            for dependency in platform.dependencies:
                metrics.watch_dependency(dependency)
        schema_usage.connect(redis, platform.dependencies.get("redis"))
        runtime = Runtime(
            engine,
            redis,
            build_services(settings, engine, redis, platform, schema_usage),
            platform,
        )
        app.state.runtime = runtime
        rate_limits.connect(redis, platform.dependencies.get("redis"))
        feed = None
        if redis is not None and settings.cache_enabled:
            # Every replica's bumps reach this process's in-process level as messages.
            feed = InvalidationFeed(
                redis,
                platform.cache,
                heartbeat_seconds=settings.cache_invalidation_heartbeat_seconds,
            )
            feed.start()
        app.state.invalidation_feed = feed
        poller = None
        if redis is None and settings.cache_enabled and settings.cache_tag_poll_seconds > 0:
            # Without Redis, the store carries the CLI's invalidations to this process.
            poller = TagPoller(engine, platform.cache, settings.cache_tag_poll_seconds)
            poller.start()
        refresher = None
        if settings.analytics_rollup_refresh_seconds > 0:
            refresher = RollupRefresher(
                engine,
                runtime.services.analytics.catalog,
                settings.analytics_rollup_refresh_seconds,
            )
            refresher.start()
        flushing = asyncio.create_task(schema_usage.run(settings.schema_usage_flush_seconds))
        jobs = runtime.services.jobs
        job_maintenance = JobMaintenance(jobs, settings.jobs_sweep_seconds)
        job_maintenance.start()
        if isinstance(jobs.dispatcher, EmbeddedDispatcher):
            # Jobs queued before a restart of an embedded server are picked up again; a store
            # that cannot be read now must not stop the server from starting (readiness says).
            try:
                await jobs.recover_queued()
            except Exception as failure:
                _log.warning("queued jobs not recovered", error=type(failure).__name__)
        _log.info("started", version=__version__, store=engine.dialect.name, redis=bool(redis))
        freeze_startup_objects()
        try:
            yield
        finally:
            # Each step is bounded: one that hangs (a half-closed socket) is logged and left,
            # so a drained replica still exits and frees its slot.
            step = settings.shutdown_timeout_seconds
            await _bounded("job maintenance", job_maintenance.aclose(), step)
            await _bounded("job dispatcher", jobs.dispatcher.aclose(), step)
            if poller is not None:
                await _bounded("tag poller", poller.aclose(), step)
            if feed is not None:
                await _bounded("invalidation feed", feed.aclose(), step)
            if refresher is not None:
                await _bounded("rollup refresher", refresher.aclose(), step)
            await _bounded("cache loads", platform.cache.settle_loads(), step)
            await _bounded("security audit", security_audit.drain(), step)
            await _bounded("rate limits", rate_limits.aclose(), step)
            flushing.cancel()
            with suppress(asyncio.CancelledError):
                await flushing
            await _bounded("schema usage", schema_usage.flush(), step)
            if redis is not None:
                await _bounded("redis", redis.aclose(), step)
            await _bounded("store", engine.dispose(), step)
            tracing.shutdown()
            if metrics is not None:
                metrics.process_exited()
            runtime = None
            _log.info("stopped", version=__version__)

    documents = DocumentCache.from_settings(graphql_schema, settings)
    observers: list[PipelineObserver] = [TracingObserver()]
    if metrics is not None:
        observers.append(MetricsObserver(metrics))
    gate = FieldGate(
        graphql_schema,
        settings,
        field_limiter=lambda: rate_limits.fields,
        audit=security_audit,
    )
    pipeline = RequestPipeline(
        schema=graphql_schema,
        settings=settings,
        documents=documents,
        persisted=PersistedQueries(
            settings,
            documents,
            lambda: runtime.redis if runtime is not None else None,
            lambda: runtime.platform.dependencies.get("redis") if runtime is not None else None,
        ),
        authenticator=Authenticator(services),
        services=services,
        cost=OperationCost(settings),
        analyzer=DocumentAnalyzer(graphql_schema, gate.table),
        gate=gate,
        responses=ResponseCache(graphql_schema, cache, enabled=settings.response_cache_enabled),
        usage=schema_usage,
        observers=observers,
    )
    endpoint = GraphQLEndpoint(
        pipeline,
        settings,
        (lambda: graphiql_page(settings.graphql_path)) if settings.graphiql_enabled else None,
    )
    routes = [
        Route(settings.graphql_path, endpoint.handle, methods=["GET", "POST"]),
        Route("/healthz", liveness, methods=["GET"]),
        Route(
            "/exports/{job_id}/parts/{number}", download_endpoint(services), methods=["GET", "HEAD"]
        ),
        Route("/readyz", readiness_endpoint(services), methods=["GET"]),
        graphiql_static_mount(),
    ]
    # REST beside GraphQL: the published operations, their OpenAPI document and /docs.
    published = published_operations(settings, schema._schema)
    routes.extend(RestEndpoint(pipeline, settings, published).routes())
    openapi = build_openapi(settings, graphql_schema, published)
    routes.append(Route("/openapi.json", openapi_endpoint(openapi), methods=["GET"]))
    if settings.api_docs:
        routes.append(Route("/docs", api_docs, methods=["GET"]))
        routes.append(api_docs_static_mount())
    if metrics is not None:
        token = settings.metrics_bearer_token
        routes.append(
            Route(
                "/metrics",
                metrics_endpoint(metrics, token.get_secret_value() if token else None),
                methods=["GET"],
            )
        )
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(DrainingConnectionMiddleware),
            *tracing.middleware(),
            *([Middleware(MetricsMiddleware, metrics=metrics)] if metrics is not None else []),
            Middleware(RequestContextMiddleware),
            Middleware(
                RequestRateLimitMiddleware,
                settings=settings,
                rate_limits=rate_limits,
                audit=security_audit,
                metrics=metrics,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.tracing = tracing
    app.state.schema = schema
    app.state.openapi = openapi
    app.state.pipeline = pipeline
    return app


def create_app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory``: settings from DATAINTEL_* variables."""
    return create_app(Settings())
