"""GET /metrics on the real app: RED per route and operation, errors, caches, breakers, limits."""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dataintel.app import create_app
from dataintel.observability.metric_cells import counter_cells, histogram_cells
from dataintel.observability.metrics import GatewayMetrics, increment, observation
from dataintel.settings import Settings
from tests.integration.test_degradation import sqlite_file
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import UnreadableStore

ORDERS = "query RecentOrders { orders(first: 5) { nodes { id customer { name } } } }"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, by name and labels."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """The sample's value, 0 when it is not exported."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def total(text: str, name: str, **labels: str) -> float:
    """The sum over every sample of that name whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples(text).items() if n == name and wanted <= found)


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def post(client: httpx.AsyncClient, query: str, name: str | None = None) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, "operationName": name})


async def test_red_per_route_and_operation(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(response_cache_enabled=False))) as client:
        for _ in range(3):
            assert "errors" not in (await post(client, ORDERS, "RecentOrders")).json()
        await post(client, "query Broken { nope }", "Broken")
        text = await scrape(client)

    assert (
        value(text, "dataintel_graphql_operations_total", operation="RecentOrders", type="query")
        == 3
    )
    assert (
        value(
            text,
            "dataintel_graphql_operation_duration_seconds_count",
            operation="RecentOrders",
            type="query",
        )
        == 3
    )
    assert (
        value(text, "dataintel_graphql_errors_total", operation="Broken", code="BAD_USER_INPUT")
        == 1
    )
    assert (
        value(text, "dataintel_graphql_errors_total", operation="RecentOrders", code="INTERNAL")
        == 0
    )
    assert (
        value(text, "dataintel_http_requests_total", route="/graphql", method="POST", status="200")
        == 4
    )
    assert value(text, "dataintel_http_request_duration_seconds_count", route="/graphql") == 4
    assert total(text, "dataintel_loader_batch_size_count", loader="customers_by_id") == 3
    assert value(text, "dataintel_breaker_state", dependency="store", state="closed") == 1
    assert value(text, "dataintel_breaker_state", dependency="store", state="open") == 0
    assert total(text, "dataintel_dependency_calls_total", dependency="store") >= 2
    assert value(text, "dataintel_store_pool_connections_in_use") == 0
    assert total(text, "dataintel_cache_lookups_total", cache="entity", outcome="miss") > 0
    assert total(text, "dataintel_build_info") == 1


async def test_operation_names_beyond_the_limit_are_counted_as_other(
    make_settings: SettingsFactory,
) -> None:
    app = create_app(make_settings(metrics_max_operation_names=2))
    async with serving(app) as client:
        for name in ["First", "Second", "Third", "Fourth", "First"]:
            await post(client, f"query {name} {{ __typename }}", name)
        await post(client, "{ __typename }")
        text = await scrape(client)
    operations = {
        dict(labels)["operation"]
        for (name, labels) in samples(text)
        if name == "dataintel_graphql_operations_total"
    }
    assert operations == {"First", "Second", "other", "anonymous"}
    assert value(text, "dataintel_graphql_operations_total", operation="other", type="query") == 2


async def test_response_cache_hits_and_operation_limit_rejections(
    make_settings: SettingsFactory,
) -> None:
    async with serving(create_app(make_settings(max_depth=3))) as client:
        cacheable = "query Catalog { analyticsCatalog { measures { name } } }"
        first = (await post(client, cacheable, "Catalog")).json()
        second = (await post(client, cacheable, "Catalog")).json()
        assert first == second
        deep = (
            "query Deep { orders(first: 1) { nodes { customer {"
            " orders(first: 1) { nodes { id } } } } } }"
        )
        rejected = (await post(client, deep, "Deep")).json()
        assert rejected["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        text = await scrape(client)
    assert (
        value(text, "dataintel_cache_lookups_total", cache="response", level="none", outcome="miss")
        == 1
    )
    assert (
        value(
            text, "dataintel_cache_lookups_total", cache="response", level="memory", outcome="hit"
        )
        == 1
    )
    assert value(text, "dataintel_operation_limit_rejections_total", limit="depth") == 1
    assert (
        value(text, "dataintel_graphql_errors_total", operation="Deep", code="QUERY_TOO_COMPLEX")
        == 1
    )


async def test_breaker_transitions_and_stale_reads(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        cache_ttl_seconds=0,
        store_breaker_failures=2,
        store_breaker_reset_seconds=30,
        response_cache_enabled=False,
    )
    app = create_app(settings)
    async with serving(app) as client:
        assert "errors" not in (await post(client, ORDERS, "RecentOrders")).json()
        await UnreadableStore(app, sqlite_file(settings)).break_()
        for _ in range(3):
            await post(client, ORDERS, "RecentOrders")
        never_cached = "query Uncached { orders(first: 2) { nodes { id } } }"
        failed = (await post(client, never_cached, "Uncached")).json()
        assert failed["errors"][0]["extensions"]["code"] == "DEPENDENCY_UNAVAILABLE"
        text = await scrape(client)
    assert value(text, "dataintel_breaker_transitions_total", dependency="store", state="open") == 1
    assert value(text, "dataintel_breaker_state", dependency="store", state="open") == 1
    assert value(text, "dataintel_breaker_state", dependency="store", state="closed") == 0
    assert (
        total(text, "dataintel_dependency_failures_total", dependency="store", reason="error") >= 2
    )
    assert (
        total(text, "dataintel_dependency_failures_total", dependency="store", reason="open") >= 1
    )
    assert total(text, "dataintel_cache_lookups_total", cache="entity", outcome="stale") >= 1
    # Served stale, the cached reads still count as available; the uncached one does not.
    assert total(text, "dataintel_graphql_operations_failed_total", operation="RecentOrders") == 0
    assert total(text, "dataintel_graphql_operations_failed_total", operation="Uncached") == 1


async def test_metrics_bearer_token_and_no_rate_limit(make_settings: SettingsFactory) -> None:
    settings = make_settings(metrics_bearer_token="scrape-secret", rate_limit_requests=1)
    async with serving(create_app(settings)) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        assert (await post(client, "{ __typename }")).status_code == 200
        assert (await post(client, "{ __typename }")).status_code == 429
        for _ in range(3):
            text = await scrape(client, Authorization="Bearer scrape-secret")
    assert value(text, "dataintel_rate_limit_rejections_total", rule="client_requests") == 1
    assert (
        value(text, "dataintel_http_requests_total", route="/graphql", method="POST", status="429")
        == 1
    )


async def test_metrics_can_be_turned_off(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings(metrics_enabled=False))) as client:
        response = await client.get("/metrics")
        assert response.status_code == 404
        assert "dataintel_" not in response.text


def test_bound_recorders_count_what_the_public_methods_count() -> None:
    """The per-request series are added to through their values (metrics.increment and
    metrics.observation): the samples must be those of Counter.inc and Histogram.observe."""

    def series(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
        return [
            (sample.name, sample.labels, sample.value)
            for family in registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
        ]

    registries = bound, public = CollectorRegistry(), CollectorRegistry()
    counters = [Counter("requests", "r", ["route"], registry=r) for r in registries]
    histograms = [
        Histogram("seconds", "s", ["route"], buckets=(0.005, 0.1, 2.5), registry=r)
        for r in registries
    ]
    add = increment(counters[0].labels("/graphql"))
    observe = observation(histograms[0].labels("/graphql"))
    for amount in (0.0, 0.001, 0.005, 0.0051, 0.1, 2.5, 3.0, 1e9, -1.0, float("inf")):
        add(1)
        counters[1].labels("/graphql").inc(1)
        observe(amount)
        histograms[1].labels("/graphql").observe(amount)
    assert series(bound) == series(public)
    assert series(bound)[0] == ("requests_total", {"route": "/graphql"}, 10.0)


def test_cells_expose_what_the_public_methods_expose() -> None:
    """The per-request series are counted in plain lists (metric_cells): the exposition,
    HELP and buckets included, must be that of Counter.inc and Histogram.observe, for a
    child shared by several keys too (a route's GET and POST), and the public methods must
    still add to the same values."""
    registries = cells_registry, public = CollectorRegistry(), CollectorRegistry()
    counters = [Counter("requests", "r", ["route"], registry=r) for r in registries]
    histograms = [
        Histogram("seconds", "s", ["route"], buckets=(0.005, 0.1, 2.5), registry=r)
        for r in registries
    ]
    bounds = (0.005, 0.1, 2.5, float("inf"))
    count = counter_cells(counters[0].labels("/graphql"))
    again = counter_cells(counters[0].labels("/graphql"))
    histogram = histogram_cells(histograms[0].labels("/graphql"), bounds)
    assert again is count
    assert histogram_cells(histograms[0].labels("/graphql"), bounds) is histogram
    for amount in (0.0, 0.001, 0.005, 0.0051, 0.1, 2.5, 3.0, 1e9, float("inf")):
        count[0] += 1
        counters[1].labels("/graphql").inc(1)
        histogram[0] += amount
        index = bisect_left(bounds, amount)
        if index < len(bounds) and amount <= bounds[index]:
            histogram[index + 1] += 1
        histograms[1].labels("/graphql").observe(amount)
    counters[0].labels("/graphql").inc(2)
    counters[1].labels("/graphql").inc(2)
    histograms[0].labels("/graphql").observe(0.05)
    histograms[1].labels("/graphql").observe(0.05)

    def exposition(registry: CollectorRegistry) -> list[bytes]:
        return [line for line in generate_latest(registry).splitlines() if b"_created" not in line]

    assert exposition(cells_registry) == exposition(public)
    assert cells_registry.get_sample_value("requests_total", {"route": "/graphql"}) == 11.0


def test_cells_fall_back_to_the_public_methods_without_the_known_internals() -> None:
    """A prometheus_client whose children keep their values elsewhere: the cells hand each
    addition to inc and observe instead of failing the request."""

    class Opaque:
        """A child showing only its public methods."""

        def __init__(self, child: Any) -> None:
            self.inc = getattr(child, "inc", None)
            self.observe = getattr(child, "observe", None)

    registries = cells_registry, public = CollectorRegistry(), CollectorRegistry()
    counters = [Counter("requests", "r", ["route"], registry=r) for r in registries]
    histograms = [
        Histogram("seconds", "s", ["route"], buckets=(0.005, 0.1), registry=r) for r in registries
    ]
    bounds = (0.005, 0.1, float("inf"))
    count = counter_cells(Opaque(counters[0].labels("/graphql")))
    histogram = histogram_cells(Opaque(histograms[0].labels("/graphql")), bounds)
    for amount in (0.001, 0.05, 3.0):
        count[0] += 1
        counters[1].labels("/graphql").inc(1)
        histogram[0] += amount
        histogram[bisect_left(bounds, amount) + 1] += 1
        histograms[1].labels("/graphql").observe(amount)

    def exposition(registry: CollectorRegistry) -> list[bytes]:
        return [line for line in generate_latest(registry).splitlines() if b"_created" not in line]

    assert exposition(cells_registry) == exposition(public)


def test_gateway_metrics_count_a_request_as_the_public_methods_do() -> None:
    """record_http, record_operation and on_cache through their cells: the same samples
    as the public methods on the same children."""
    settings = Settings()
    counted = GatewayMetrics(settings.observability, "/graphql")
    public = GatewayMetrics(settings.observability, "/graphql")
    started = time.perf_counter()
    for method, status in (("GET", 200), ("POST", 200), ("GET", 200), ("POST", 400)):
        counted.record_http("/graphql", method, status, started)
        public.http_requests.labels("/graphql", method, str(status)).inc()
        public.http_duration.labels("/graphql").observe(0.0)
    counted.record_http("/api/v1/orders", "GET", 200, started)
    public.http_requests.labels("/api/v1", "GET", "200").inc()
    public.http_duration.labels("/api/v1").observe(0.0)
    for seconds in (0.001, 0.2, 40.0):
        counted.record_operation("Orders", "query", seconds, [])
        public.operations.labels("Orders", "query").inc()
        public.operation_duration.labels("Orders", "query").observe(seconds)
    counted.on_cache("response", "memory", "hit")
    counted.on_cache("response", "memory", "hit", 3)
    public.cache.labels("response", "memory", "hit").inc(4)

    def series(metrics: GatewayMetrics, durations: bool) -> list[tuple[str, object, float]]:
        return [
            (sample.name, sorted(sample.labels.items()), sample.value)
            for family in metrics.registry.collect()
            for sample in family.samples
            if not sample.name.endswith("_created")
            and (durations or "http_request_duration" not in sample.name)
        ]

    # The HTTP durations are measured, not given: their buckets' counts and sums differ.
    assert series(counted, durations=False) == series(public, durations=False)
    assert (
        counted.registry.get_sample_value(
            "dataintel_http_request_duration_seconds_count", {"route": "/graphql"}
        )
        == 4.0
    )
