"""The application factory: ``create_app(settings)`` builds everything, importing starts nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from dataintel import __version__
from dataintel.cache.redis_connection import create_redis
from dataintel.gateway.execution import GraphQLExecutor
from dataintel.http.graphiql import graphiql_page, graphiql_static_mount
from dataintel.http.graphql_endpoint import GraphQLEndpoint
from dataintel.http.probes import liveness, readiness_endpoint
from dataintel.observability.logging import configure_logging, get_logger
from dataintel.observability.request_context import RequestContextMiddleware
from dataintel.schema import build_schema
from dataintel.services import Services
from dataintel.services.analytics import SqlAnalyticsService
from dataintel.services.analytics import load_catalog as load_analytics_catalog
from dataintel.services.commerce import SqlCommerceService
from dataintel.services.features import SqlFeatureService, load_catalog
from dataintel.services.status import DependencyProbe, ProbingStatusService, RedisProbe, StoreProbe
from dataintel.settings import Settings
from dataintel.store.engine import create_engine

_log = get_logger("dataintel.app")


@dataclass(slots=True)
class Runtime:
    """What the app opens at startup and closes at shutdown."""

    engine: AsyncEngine
    redis: Redis | None
    services: Services


def build_services(settings: Settings, engine: AsyncEngine, redis: Redis | None) -> Services:
    """The services registry over the app's connections."""
    probes: list[DependencyProbe] = [StoreProbe(engine)]
    if redis is not None:
        probes.append(RedisProbe(redis))
    return Services(
        status=ProbingStatusService(__version__, probes, settings.readiness_timeout_seconds),
        commerce=SqlCommerceService(engine),
        features=SqlFeatureService(engine, load_catalog(settings.feature_views_path)),
        analytics=SqlAnalyticsService(
            engine, load_analytics_catalog(settings.analytics_catalog_path)
        ),
    )


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app: routes, middleware and the lifespan that opens the store and Redis."""
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level)
    schema = build_schema()
    runtime: Runtime | None = None

    def services() -> Services:
        if runtime is None:
            raise RuntimeError("the app's lifespan has not started")
        return runtime.services

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal runtime
        engine = create_engine(settings)
        redis = create_redis(settings)
        runtime = Runtime(engine, redis, build_services(settings, engine, redis))
        app.state.runtime = runtime
        _log.info("started", version=__version__, store=engine.dialect.name, redis=bool(redis))
        try:
            yield
        finally:
            if redis is not None:
                await redis.aclose()
            await engine.dispose()
            runtime = None

    endpoint = GraphQLEndpoint(
        GraphQLExecutor(schema._schema, settings),
        settings,
        services,
        (lambda: graphiql_page(settings.graphql_path)) if settings.graphiql_enabled else None,
    )
    routes = [
        Route(settings.graphql_path, endpoint.handle, methods=["GET", "POST"]),
        Route("/healthz", liveness, methods=["GET"]),
        Route("/readyz", readiness_endpoint(services), methods=["GET"]),
        graphiql_static_mount(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestContextMiddleware)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.schema = schema
    return app


def create_app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory``: settings from DATAINTEL_* variables."""
    return create_app(Settings())
