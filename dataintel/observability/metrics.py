"""Prometheus metrics: RED per route and operation, caches, breakers, limits, loaders, pool.

With several workers (``dataintel serve --workers N``) each process writes its samples to
prometheus-client's multiprocess directory and ``/metrics`` answers the sum over all of them.
prometheus-client reads ``PROMETHEUS_MULTIPROC_DIR`` when it is first imported, so the
directory is set up by ``dataintel serve`` before any worker starts.
"""

from __future__ import annotations

import hmac
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from dataintel import __version__
from dataintel.observability.drops import KINDS as DROP_KINDS
from dataintel.observability.drops import Drops
from dataintel.observability.metric_cells import Cells, counter_cells, histogram_cells
from dataintel.observability.tracing import loader_batch_span

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from dataintel.resilience import Dependency
    from dataintel.settings import ObservabilitySettings

REST_ROUTE = "/api/v1"
"""The route label of every REST endpoint (the published operations)."""
OTHER = "other"
"""The label of every operation name past the configured number of distinct ones."""
ANONYMOUS = "anonymous"
"""The label of operations without a name."""
BREAKER_STATES = ("closed", "open", "half-open")
SERVER_FAULTS = frozenset({"INTERNAL", "DEPENDENCY_UNAVAILABLE", "TIMEOUT"})
"""Error codes that count against availability: the gateway's fault, not the client's."""

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
_DURATION_BOUNDS = (*_DURATION_BUCKETS, float("inf"))
"""The duration histograms' upper bounds as their children keep them (+Inf the last)."""
_DURATION_LAST = len(_DURATION_BOUNDS)

_active_metrics: ContextVar[GatewayMetrics | None] = ContextVar("dataintel_metrics", default=None)


activate_metrics = _active_metrics.set
"""``GatewayMetrics.activate`` of the metrics given, without a method's frame (the GraphQL
path's layer calls it on every request)."""
reset_metrics = _active_metrics.reset
"""``GatewayMetrics.reset``, as ``activate_metrics``."""


def current_metrics() -> GatewayMetrics | None:
    """The metrics of the app serving the current request, or None outside one."""
    return _active_metrics.get()


class OperationNames:
    """Bounds the operation label: the first ``limit`` distinct names, then ``other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def label(self, name: str | None) -> str:
        """The label an operation of this name is counted under."""
        if not name:
            return ANONYMOUS
        if name in self._seen:
            return name
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(name)
        return name


class GatewayMetrics:
    """Every series the gateway exports, registered on one registry per app."""

    def __init__(self, observability: ObservabilitySettings, graphql_path: str) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._http_cells: dict[tuple[str, str, int], tuple[Cells, Cells]] = {}
        self._operation_cells: dict[tuple[str, str], tuple[Cells, Cells]] = {}
        self._cache_cells: dict[tuple[str, str, str], Cells] = {}
        self._rest_prefix = REST_ROUTE + "/"
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = observability.metrics_multiprocess_dir
        self.operation_names = OperationNames(observability.metrics_max_operation_names)
        self.routes = frozenset({graphql_path, "/healthz", "/readyz", "/metrics"})
        r = self.registry
        self.build_info = Gauge(
            "dataintel_build_info",
            "The gateway's version (always 1).",
            ["version"],
            registry=r,
            multiprocess_mode="max",
        )
        self.build_info.labels(__version__).set(1)
        self.http_requests = Counter(
            "dataintel_http_requests",
            "HTTP requests answered, by route, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "dataintel_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.operations = Counter(
            "dataintel_graphql_operations",
            "GraphQL operations executed or rejected, by operation name and type.",
            ["operation", "type"],
            registry=r,
        )
        self.operation_errors = Counter(
            "dataintel_graphql_errors",
            "Errors in GraphQL responses, by operation name and ErrorCode.",
            ["operation", "code"],
            registry=r,
        )
        self.operations_failed = Counter(
            "dataintel_graphql_operations_failed",
            "Operations the gateway failed to serve (an INTERNAL, DEPENDENCY_UNAVAILABLE or"
            " TIMEOUT error): the availability SLI's bad events.",
            ["operation", "type"],
            registry=r,
        )
        self.operation_duration = Histogram(
            "dataintel_graphql_operation_duration_seconds",
            "Time to answer a GraphQL operation, by operation name and type.",
            ["operation", "type"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.cache = Counter(
            "dataintel_cache_lookups",
            "Cache lookups by cache (response, entity), level (memory, redis) and outcome"
            " (hit, miss, stale).",
            ["cache", "level", "outcome"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "dataintel_breaker_state",
            "1 for each dependency's current breaker state (the worst over the workers).",
            ["dependency", "state"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.breaker_transitions = Counter(
            "dataintel_breaker_transitions",
            "Breaker state changes, by dependency and the state entered.",
            ["dependency", "state"],
            registry=r,
        )
        self.dependency_calls = Counter(
            "dataintel_dependency_calls",
            "Calls to a guarded dependency (store, redis).",
            ["dependency"],
            registry=r,
        )
        self.dependency_failures = Counter(
            "dataintel_dependency_failures",
            "Failed calls to a guarded dependency, by reason (error, timeout, open).",
            ["dependency", "reason"],
            registry=r,
        )
        self.rate_limit_rejections = Counter(
            "dataintel_rate_limit_rejections",
            "Requests or fields refused by a rate limit, by rule.",
            ["rule"],
            registry=r,
        )
        self.operation_limit_rejections = Counter(
            "dataintel_operation_limit_rejections",
            "Operations refused as QUERY_TOO_COMPLEX, by limit.",
            ["limit"],
            registry=r,
        )
        self.drops = Counter(
            "dataintel_dropped",
            "Work given up so a request would not wait or fail, by kind (audit queue overflow,"
            " failed audit batches, API-key last-use writes, persisted-query stores).",
            ["kind"],
            registry=r,
        )
        self.loader_batch_size = Histogram(
            "dataintel_loader_batch_size",
            "Keys per loader batch, by loader.",
            ["loader"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self._loader_batch_observers: dict[str, Observe] = {}
        self.store_pool_in_use = Gauge(
            "dataintel_store_pool_connections_in_use",
            "Store connections checked out of the pool (summed over the workers).",
            registry=r,
            multiprocess_mode="livesum",
        )

    def loader_batch_observer(self, loader: str) -> Observe:
        """The loader's batch-size observation, its labelled child looked up once (loader
        names are the batch functions': a bounded set)."""
        found = self._loader_batch_observers.get(loader)
        if found is None:
            found = observation(self.loader_batch_size.labels(loader))
            self._loader_batch_observers[loader] = found
        return found

    def route(self, path: str) -> str:
        """The route label: a known route, or ``other`` (paths are unbounded)."""
        if path.startswith(self._rest_prefix):
            # The published operations (gateway.published_operations.REST_PREFIX) share one label.
            return REST_ROUTE
        return path if path in self.routes else OTHER

    def operation(self, name: str | None) -> str:
        """The bounded operation label."""
        return self.operation_names.label(name)

    def record_operation(
        self,
        operation: str,
        operation_type: str,
        seconds: float,
        errors: Sequence[Mapping[str, Any]],
    ) -> None:
        """One GraphQL operation answered, with the error entries of its response."""
        cells = self._operation_cells.get((operation, operation_type))
        if cells is None:
            cells = self._operation_cells[(operation, operation_type)] = (
                counter_cells(self.child(self.operations, operation, operation_type)),
                histogram_cells(
                    self.child(self.operation_duration, operation, operation_type),
                    _DURATION_BOUNDS,
                ),
            )
        count, histogram = cells
        count[0] += 1
        # Histogram.observe's sum, then the first bucket whose upper bound holds the amount.
        histogram[0] += seconds
        index = bisect_left(_DURATION_BOUNDS, seconds)
        if index < _DURATION_LAST and seconds <= _DURATION_BOUNDS[index]:
            histogram[index + 1] += 1
        if not errors:
            return
        failed = False
        for error in errors:
            extensions = error.get("extensions") or {}
            code = str(extensions.get("code", "INTERNAL"))
            self.operation_errors.labels(operation, code).inc()
            failed = failed or code in SERVER_FAULTS
            if code == "QUERY_TOO_COMPLEX" and "limit" in extensions:
                self.operation_limit_rejections.labels(str(extensions["limit"])).inc()
            elif code == "RATE_LIMITED" and "field" in extensions:
                self.rate_limit_rejections.labels(str(extensions["field"])).inc()
        if failed:
            self.operations_failed.labels(operation, operation_type).inc()

    def record_http(self, path: str, method: str, status: int, started: float) -> None:
        """One HTTP request answered with ``status``, begun at ``started`` (perf_counter)."""
        if path.startswith(self._rest_prefix):
            # The published operations (gateway.published_operations.REST_PREFIX) share one label.
            route = REST_ROUTE
        else:
            route = path if path in self.routes else OTHER
        cells = self._http_cells.get((route, method, status))
        if cells is None:
            cells = self._http_cells[(route, method, status)] = (
                counter_cells(self.child(self.http_requests, route, method, str(status))),
                histogram_cells(self.child(self.http_duration, route), _DURATION_BOUNDS),
            )
        count, histogram = cells
        count[0] += 1
        seconds = time.perf_counter() - started
        histogram[0] += seconds
        index = bisect_left(_DURATION_BOUNDS, seconds)
        if index < _DURATION_LAST and seconds <= _DURATION_BOUNDS[index]:
            histogram[index + 1] += 1

    def activate(self) -> Token[GatewayMetrics | None]:
        """Makes these the current request's metrics (``current_metrics``) until ``reset``."""
        return _active_metrics.set(self)

    @staticmethod
    def reset(token: Token[GatewayMetrics | None]) -> None:
        """Ends what ``activate`` began."""
        _active_metrics.reset(token)

    def watch_dependency(self, dependency: Dependency) -> None:
        """Counts the dependency's calls, failures and breaker transitions."""
        self._set_breaker(dependency.name, dependency.state)
        dependency.observer = self

    def on_call(self, dependency: str, failure: str | None) -> None:
        """One call to a guarded dependency; failure names why it failed, if it did."""
        self.dependency_calls.labels(dependency).inc()
        if failure is not None:
            self.dependency_failures.labels(dependency, failure).inc()

    def on_state_change(self, dependency: str, state: str) -> None:
        """A breaker entered a state."""
        self.breaker_transitions.labels(dependency, state).inc()
        self._set_breaker(dependency, state)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, kept: prometheus_client validates and locks on every
        call, a cost paid per request on the hottest paths. Label values are bounded."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def watch_drops(self, drops: Drops) -> None:
        """Counts the process's drops, every kind exported from zero."""
        for kind in DROP_KINDS:
            self.child(self.drops, kind)
        drops.observer = self.on_drop

    def on_drop(self, kind: str, count: int) -> None:
        """Work of one kind given up."""
        self.child(self.drops, kind).inc(count)

    def on_cache(self, cache: str, level: str, outcome: str, count: int = 1) -> None:
        """Cache lookups with one outcome."""
        if count:
            key = (cache, level, outcome)
            cells = self._cache_cells.get(key)
            if cells is None:
                cells = self._cache_cells[key] = counter_cells(self.child(self.cache, *key))
            cells[0] += count

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Tracks connections checked out of the store's pool."""
        from sqlalchemy import event

        gauge = self.store_pool_in_use

        def checked_out(*_: Any) -> None:
            gauge.inc()

        def checked_in(*_: Any) -> None:
            gauge.dec()

        event.listen(engine.sync_engine, "checkout", checked_out)
        event.listen(engine.sync_engine, "checkin", checked_in)

    def _set_breaker(self, dependency: str, state: str) -> None:
        for candidate in BREAKER_STATES:
            self.breaker_state.labels(dependency, candidate).set(1 if candidate == state else 0)

    def exposition(self) -> bytes:
        """The text format of every series, summed over the workers in multiprocess mode."""
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=str(self.multiprocess_dir)
            )
            return generate_latest(registry)
        return generate_latest(self.registry)

    def process_exited(self) -> None:
        """Drops this process's live gauges (pool, breakers) from the multiprocess sum."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), str(self.multiprocess_dir)
            )


Increment = Callable[[float], None]
Observe = Callable[[float], None]


def increment(child: Any) -> Increment:
    """``child.inc`` for a labelled Counter child, bound to the value it adds to.

    ``Counter.inc`` checks on every call that the metric is a labelled child and that the
    amount is not negative; the gateway's calls are on children with non-negative amounts,
    so only the value's own ``inc`` (a lock, or a multiprocess file) is left per request.
    """
    value = getattr(child, "_value", None)
    add = getattr(value, "inc", None)
    if add is None:
        # Not the prometheus_client this was written against: the public method.
        inc: Increment = child.inc
        return inc
    bound: Increment = add
    return bound


def observation(child: Any) -> Observe:
    """``child.observe`` for a labelled Histogram child, without its per-call checks: the
    sum, then the first bucket whose upper bound holds the amount (as ``observe`` adds)."""
    try:
        add_sum: Increment = child._sum.inc
        buckets: list[Increment] = [bucket.inc for bucket in child._buckets]
        bounds: list[float] = list(child._upper_bounds)
    except AttributeError:
        observe: Observe = child.observe
        return observe
    last = len(bounds)

    def record(amount: float) -> None:
        add_sum(amount)
        index = bisect_left(bounds, amount)
        if index < last and amount <= bounds[index]:
            buckets[index](1)

    return record


def loader_batch(loader: str, size: int) -> AbstractContextManager[None]:
    """Counts one loader batch's size and traces it (when tracing is on)."""
    metrics = _active_metrics.get()
    if metrics is not None:
        metrics.loader_batch_observer(loader)(size)
    return loader_batch_span(loader, size)


def metrics_endpoint(metrics: GatewayMetrics, token: str | None) -> Any:
    """GET /metrics: the exposition, behind a bearer token when one is configured."""
    expected = f"Bearer {token}".encode() if token else None

    async def serve(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return Response(
                    "a bearer token is required\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                    media_type="text/plain",
                )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return serve


class MetricsMiddleware:
    """RED per route: requests by status and their duration; the metrics for loaders."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = _active_metrics.set(self.metrics)
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            _active_metrics.reset(token)
            self.metrics.record_http(scope["path"], scope["method"], status, started)
