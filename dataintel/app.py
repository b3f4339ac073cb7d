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
from dataintel.context import RequestContexts
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
from dataintel.http.graphql_path import GraphQLPath
from dataintel.http.openapi_endpoint import openapi_endpoint
from dataintel.http.probes import liveness, readiness_endpoint
from dataintel.http.rate_limit import ClientRequestLimit, RequestRateLimitMiddleware
from dataintel.http.rest_endpoint import RestEndpoint
from dataintel.job_system import build_job_system, download_signer
from dataintel.observability.drops import Drops
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
from dataintel.services.auth.identity_cache import IdentityCache
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
from dataintel.services.privacy.keyed_hash import privacy_key
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
    """What the lifespan opened: the raw connections (closed at shutdown), the platform of
    breakers and cache over them (``Platform``), and the domain services built on that
    platform (``Services``)."""

    engine: AsyncEngine
    redis: Redis | None
    services: Services
    platform: Platform


def build_services(
    settings: Settings,
    engine: AsyncEngine,
    redis: Redis | None,
    platform: Platform,
    schema_usage: SchemaUsageService,
    drops: Drops,
) -> Services:
    """The services registry over the app's connections, their breakers and the cache."""
    probes: list[DependencyProbe] = [StoreProbe(engine)]
    if redis is not None:
        probes.append(RedisProbe(redis, required=settings.redis.required_for_readiness))
    store, cache = platform.store, platform.cache
    lifetimes = CacheLifetimes(
        entities_seconds=settings.cache.ttl_seconds,
        features_seconds=settings.cache.features_ttl_seconds,
        analytics_seconds=settings.cache.analytics_ttl_seconds,
        stale_seconds=settings.cache.stale_seconds,
    )
    # First: a production start without a signing secret names that secret, not a later
    # consequence of it (the privacy key derives from it).
    tokens = TokenCodec.from_settings(settings.auth, production=settings.production)
    audit = SqlAuditService(
        store,
        queue_size=settings.auth.audit_queue_size,
        batch_size=settings.auth.audit_batch_size,
        drops=drops,
    )
    revocations: TokenRevocations = (
        MemoryTokenRevocations()
        if redis is None
        else RedisTokenRevocations(redis, platform.dependencies["redis"], settings.redis.key_prefix)
    )
    analytics = CachedAnalyticsService(
        SqlAnalyticsService(
            store,
            load_analytics_catalog(settings.analytics.catalog_path),
            rollups=settings.analytics.rollups,
        ),
        cache,
        lifetimes,
    )
    storage = FilesystemArtifactStorage(settings.export.dir)
    resources = JobResources(
        settings.jobs,
        settings.export,
        settings.privacy,
        privacy_key(settings.privacy, settings.auth, production=settings.production),
        engine,
        store,
        storage,
        audit,
        analytics,
        cache,
    )
    jobs = build_job_system(settings.jobs, settings.redis, resources)
    privacy = SqlSubjectRequestService(store, audit, request_limits(settings.privacy))
    privacy.dispatcher = JobServiceDispatcher(jobs.service)
    return Services(
        status=ProbingStatusService(
            __version__,
            probes,
            settings.server.readiness_timeout_seconds,
            platform.dependencies,
            drops,
        ),
        commerce=CachedCommerceService(SqlCommerceService(store), cache, lifetimes),
        features=CachedFeatureService(
            SqlFeatureService(store, load_catalog(settings.catalogs.feature_views_path)),
            cache,
            lifetimes,
        ),
        analytics=analytics,
        auth=SqlAuthService(
            store,
            audit,
            tokens,
            revocations=revocations,
            identities=IdentityCache(cache, settings.auth.identity_cache_seconds),
            drops=drops,
        ),
        audit=audit,
        schema_usage=schema_usage,
        reconciliation=SqlReconciliationService(
            store, load_comparisons(settings.catalogs.reconciliation_comparisons_path)
        ),
        quality=SqlQualityService(store, load_checks(settings.catalogs.quality_checks_path)),
        jobs=jobs.service,
        artifacts=storage,
        downloads=download_signer(settings.export, settings.auth),
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
    configure_logging(settings.observability.log_format, settings.observability.log_level)
    schema = build_schema()
    graphql_schema = compiled_schema(schema)
    runtime: Runtime | None = None
    tracing = Tracing.from_settings(settings.observability)
    metrics = (
        GatewayMetrics(settings.observability, settings.http.graphql_path)
        if settings.observability.metrics_enabled
        else None
    )
    drops = Drops()
    if metrics is not None:
        metrics.watch_drops(drops)

    def services() -> Services:
        if runtime is None:
            raise RuntimeError("the app's lifespan has not started")
        return runtime.services

    def cache() -> TwoLevelCache | None:
        return runtime.platform.cache if runtime is not None else None

    rate_limits = RateLimits(settings.rate_limit, settings.redis)
    schema_usage = SchemaUsageRecorder(
        deprecated_coordinates(graphql_schema), enabled=settings.observability.schema_usage_enabled
    )
    security_audit = SecurityAudit(lambda: runtime.services.audit if runtime else None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal runtime
        engine = create_engine(settings.store)
        redis = create_redis(settings.redis)
        tracing.instrument_engine(engine)
        tracing.instrument_redis(redis)
        platform = build_platform(settings.store, settings.redis, settings.cache, engine, redis)
        if metrics is not None:
            metrics.watch_pool(engine)
            platform.cache.observer = metrics.on_cache
            for dependency in platform.dependencies:
                metrics.watch_dependency(dependency)
        schema_usage.connect(redis, platform.dependencies.get("redis"))
        runtime = Runtime(
            engine,
            redis,
            build_services(settings, engine, redis, platform, schema_usage, drops),
            platform,
        )
        app.state.runtime = runtime
        rate_limits.connect(redis, platform.dependencies.get("redis"))
        feed = None
        if redis is not None and settings.cache.enabled:
            # Every replica's bumps reach this process's in-process level as messages.
            feed = InvalidationFeed(
                redis,
                platform.cache,
                heartbeat_seconds=settings.cache.invalidation_heartbeat_seconds,
            )
            feed.start()
        app.state.invalidation_feed = feed
        poller = None
        if redis is None and settings.cache.enabled and settings.cache.tag_poll_seconds > 0:
            # Without Redis, the store carries the CLI's invalidations to this process.
            poller = TagPoller(engine, platform.cache, settings.cache.tag_poll_seconds)
            poller.start()
        refresher = None
        if settings.analytics.rollup_refresh_seconds > 0:
            refresher = RollupRefresher(
                engine,
                runtime.services.analytics.catalog,
                settings.analytics.rollup_refresh_seconds,
            )
            refresher.start()
        flushing = asyncio.create_task(
            schema_usage.run(settings.observability.schema_usage_flush_seconds)
        )
        jobs = runtime.services.jobs
        job_maintenance = JobMaintenance(jobs, settings.jobs.sweep_seconds)
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
            step = settings.server.shutdown_timeout_seconds
            await _bounded("job maintenance", job_maintenance.aclose(), step)
            await _bounded("job dispatcher", jobs.dispatcher.aclose(), step)
            if poller is not None:
                await _bounded("tag poller", poller.aclose(), step)
            if feed is not None:
                await _bounded("invalidation feed", feed.aclose(), step)
            if refresher is not None:
                await _bounded("rollup refresher", refresher.aclose(), step)
            await _bounded("cache loads", platform.cache.settle_loads(), step)
            # After the requests and background steps that append, before the store closes:
            # the audit writer's queue is written out, so a graceful stop loses no entry.
            await _bounded("audit log", runtime.services.audit.flush(), step)
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

    documents = DocumentCache.from_settings(graphql_schema, settings.graphql, settings.limits)
    # Untraced, the operation span is never made: the observer would find nothing to name.
    observers: list[PipelineObserver] = [TracingObserver()] if tracing.enabled else []
    if metrics is not None:
        observers.append(MetricsObserver(metrics))
    gate = FieldGate(
        graphql_schema,
        settings.effective_anonymous_roles,
        rate_limits_enabled=settings.rate_limit.enabled,
        field_limiter=lambda: rate_limits.fields,
        audit=security_audit,
    )
    pipeline = RequestPipeline(
        schema=graphql_schema,
        graphql=settings.graphql,
        limits=settings.limits,
        production=settings.production,
        documents=documents,
        persisted=PersistedQueries(
            settings.graphql,
            settings.redis,
            documents,
            lambda: runtime.redis if runtime is not None else None,
            lambda: runtime.platform.dependencies.get("redis") if runtime is not None else None,
            drops,
        ),
        authenticator=Authenticator(services),
        contexts=RequestContexts(services, settings.graphql, settings.limits.max_page_size),
        cost=OperationCost(settings.limits),
        analyzer=DocumentAnalyzer(graphql_schema, gate.table),
        gate=gate,
        responses=ResponseCache(
            graphql_schema,
            cache,
            enabled=settings.cache.response_cache_enabled,
            # Hits' JSON kept beside the in-process cache, within a quarter of its bound.
            kept_json_bytes=settings.cache.memory_bytes // 4,
        ),
        usage=schema_usage,
        observers=observers,
        prepared_requests=settings.graphql.prepared_request_cache_size,
        longest_kept_request=settings.graphql.prepared_request_max_bytes,
    )
    endpoint = GraphQLEndpoint(
        pipeline,
        settings.http,
        (lambda: graphiql_page(settings.http.graphql_path)) if settings.graphiql_enabled else None,
    )
    routes = [
        Route(settings.http.graphql_path, endpoint, methods=["GET", "POST"]),
        Route("/healthz", liveness, methods=["GET"]),
        Route(
            "/exports/{job_id}/parts/{number}", download_endpoint(services), methods=["GET", "HEAD"]
        ),
        Route("/readyz", readiness_endpoint(services), methods=["GET"]),
        graphiql_static_mount(),
    ]
    # REST beside GraphQL: the published operations, their OpenAPI document and /docs.
    published = published_operations(settings, graphql_schema)
    routes.extend(RestEndpoint(pipeline, settings.http, published).routes())
    openapi = build_openapi(settings, graphql_schema, published)
    routes.append(Route("/openapi.json", openapi_endpoint(openapi), methods=["GET"]))
    if settings.http.api_docs:
        routes.append(Route("/docs", api_docs, methods=["GET"]))
        routes.append(api_docs_static_mount())
    if metrics is not None:
        token = settings.observability.metrics_bearer_token
        routes.append(
            Route(
                "/metrics",
                metrics_endpoint(metrics, token.get_secret_value() if token else None),
                methods=["GET"],
            )
        )
    # GET and POST /graphql skip the stack below: one layer does the stack's work for them.
    # With tracing on, the stack's server span is wanted: every request goes through the stack.
    graphql_layer = [
        Middleware(
            GraphQLPath,
            graphql_path=settings.http.graphql_path,
            endpoint=endpoint,
            limit=ClientRequestLimit(
                rate_limit=settings.rate_limit,
                graphql_path=settings.http.graphql_path,
                rate_limits=rate_limits,
                audit=security_audit,
                metrics=metrics,
            ),
            metrics=metrics,
        )
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            *(graphql_layer if not tracing.enabled else []),
            Middleware(DrainingConnectionMiddleware),
            *tracing.middleware(),
            *([Middleware(MetricsMiddleware, metrics=metrics)] if metrics is not None else []),
            Middleware(RequestContextMiddleware),
            Middleware(
                RequestRateLimitMiddleware,
                rate_limit=settings.rate_limit,
                graphql_path=settings.http.graphql_path,
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
