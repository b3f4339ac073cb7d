"""Rollups give exactly the raw answer, or are not used: a differential test, and freshness.

The same seeded store answers every query twice, from raw rows and with routing to built
rollups, and the two results must be identical (rows, order, floats, totals). The queries
are the analytics tests' own plus a few hundred generated from a fixed seed, on SQLite and
(fewer) on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import random
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError
from dataintel.services.analytics import (
    AnalyticsCatalogError,
    AnalyticsFilter,
    AnalyticsOrder,
    AnalyticsQuery,
    AnalyticsResult,
    SqlAnalyticsService,
    load_catalog,
    plan_query,
    refresh_rollups,
)
from dataintel.services.analytics.key_sets import key_cells_table, key_sets_table
from dataintel.services.analytics.rollup_cells import (
    column,
    distinct_raws,
    joined_source,
    rollup_raws,
)
from dataintel.services.analytics.rollups import (
    counter_bounds,
    partition_bounds,
    partition_changes,
    partitions_over,
    rollup_state,
)
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.seed import migrate_and_seed
from tests.plugins.store import PostgresServer, sqlite_url
from tests.services.test_analytics import SAME_ON_BOTH, canonical

GENERATED_ON_SQLITE = 250
GENERATED_ON_POSTGRES = 50

REGIONS = ("north_america", "europe", "asia_pacific", "latin_america")
STRING_VALUES: dict[str, tuple[str, ...]] = {
    "region": REGIONS,
    "customer_tier": ("bronze", "silver", "gold", "platinum"),
    "sales_channel": ("web", "mobile", "marketplace"),
    "order_status": ("placed", "paid", "shipped", "delivered", "cancelled", "refunded"),
    "event_type": ("page_view", "sign_up", "add_to_cart", "purchase"),
    "event_channel": ("web", "mobile", "marketplace"),
    "product_category": tuple(tables.CATEGORIES),
    "acquisition_channel": ("organic", "paid_search", "social", "referral", "email"),
    "country": ("US", "DE", "JP", "BR", "GB"),
}
MEASURES = (
    "revenue",
    "order_count",
    "billable_orders",
    "average_order_value",
    "units_sold",
    "average_unit_price",
    "page_views",
    # Distinct counts: from the events rollups' key sets (active_customers: no rollup).
    "sessions",
    "converted_sessions",
    "conversion_rate",
    "active_customers",
    # Never routed: a source without a rollup.
    "new_customers",
)
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "America/Santiago",
    "Australia/Lord_Howe",  # half-hour DST: raw
    "Asia/Kathmandu",  # +05:45: raw
    "Asia/Kolkata",  # +05:30: raw
)
GRANULARITIES = (None, "hour", "day", "week", "month", "quarter", "year")

# The queries of tests/services/test_analytics.py, beside SAME_ON_BOTH.
FROM_THE_ANALYTICS_TESTS = [
    *SAME_ON_BOTH,
    AnalyticsQuery(
        measures=("revenue", "order_count", "average_order_value", "active_customers"),
        dimensions=("region",),
        granularity="month",
        start=datetime(2025, 4, 1, tzinfo=UTC),
        end=datetime(2025, 10, 1, tzinfo=UTC),
    ),
    AnalyticsQuery(
        measures=("page_views", "revenue"),
        granularity="day",
        timezone="America/New_York",
        start=datetime(2025, 3, 6),
        end=datetime(2025, 3, 13),
    ),
    AnalyticsQuery(
        measures=("revenue", "order_count"),
        dimensions=("sales_channel",),
        filters=(
            AnalyticsFilter("sales_channel", "not_equals", ("marketplace",)),
            AnalyticsFilter("region", "in", ("europe", "asia_pacific")),
        ),
    ),
    AnalyticsQuery(
        measures=("page_views",),
        dimensions=("region",),
        filters=(AnalyticsFilter("region", "not_in", ("europe",)),),
    ),
    AnalyticsQuery(
        measures=("revenue", "billable_orders"),
        dimensions=("region",),
        granularity="month",
        filters=(AnalyticsFilter("revenue", "gt", (20000.0,)),),
        order_by=(AnalyticsOrder("revenue", descending=True),),
        limit=5,
    ),
    AnalyticsQuery(
        measures=("units_sold", "average_unit_price"),
        dimensions=("product_category",),
        granularity="week",
        timezone="Europe/Berlin",
        order_by=(AnalyticsOrder("product_category"), AnalyticsOrder("time", descending=True)),
    ),
]


def random_query(chance: random.Random) -> AnalyticsQuery:
    """A query of random measures, dimensions, filters, granularity, zone and range."""
    measures = tuple(chance.sample(MEASURES, chance.choice((1, 1, 2, 3))))
    dimensions = tuple(chance.sample(list(STRING_VALUES), chance.choice((0, 1, 1, 2))))
    filters: list[AnalyticsFilter] = []
    for _ in range(chance.choice((0, 0, 1, 2))):
        member = chance.choice(list(STRING_VALUES))
        values = STRING_VALUES[member]
        operator = chance.choice(("equals", "not_equals", "in", "not_in"))
        count = 1 if operator in ("equals", "not_equals") else chance.randint(1, len(values))
        filters.append(AnalyticsFilter(member, operator, tuple(chance.sample(values, count))))
    if chance.random() < 0.2:
        filters.append(AnalyticsFilter(measures[0], chance.choice(("gte", "lt")), (10.0,)))
    start = end = None
    if chance.random() < 0.15:
        # Whole months of the query's zone: what a month grain of a zone answers.
        first_month = chance.randint(0, 16)
        start = datetime(2025 + first_month // 12, first_month % 12 + 1, 1)
        last_month = first_month + chance.choice((1, 3, 6))
        end = datetime(2025 + last_month // 12, last_month % 12 + 1, 1)
    elif chance.random() < 0.8:
        first = datetime(2025, 1, 1) + timedelta(days=chance.randint(0, 520))
        if chance.random() < 0.3:
            first += timedelta(hours=chance.randint(0, 23))
        if chance.random() < 0.1:
            first += timedelta(minutes=30)  # not a whole hour: raw
        start = first
        end = first + timedelta(days=chance.choice((1, 7, 30, 95, 400)))
        if chance.random() < 0.2:
            start = start.replace(tzinfo=UTC)
            end = end.replace(tzinfo=UTC)
    granularity = chance.choice(GRANULARITIES)
    order: list[AnalyticsOrder] = []
    if chance.random() < 0.4:
        order.append(AnalyticsOrder(measures[0], descending=chance.random() < 0.5))
    return AnalyticsQuery(
        measures=measures,
        dimensions=dimensions,
        granularity=granularity,
        start=start,
        end=end,
        timezone=chance.choice(ZONES),
        filters=tuple(filters),
        order_by=tuple(order),
        limit=chance.choice((3, 20, 1000)),
    )


def generated_queries(count: int, seed: int) -> list[AnalyticsQuery]:
    """``count`` valid random queries; the seed makes them the same on every run."""
    chance = random.Random(seed)
    catalog = load_catalog()
    found: list[AnalyticsQuery] = []
    while len(found) < count:
        query = random_query(chance)
        try:
            plan_query(catalog, query)
        except BadUserInputError:
            continue  # an unreachable dimension: draw again
        found.append(query)
    return found


async def build(url: str) -> None:
    engine = create_engine(Settings(database_url=url).store)
    try:
        await refresh_rollups(engine, load_catalog())
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def sqlite_rollup_url(
    seeded_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A copy of the seeded SQLite template with every rollup built."""
    copy = tmp_path_factory.mktemp("rollups") / "store.db"
    shutil.copyfile(seeded_sqlite_template, copy)
    url = sqlite_url(copy)
    asyncio.run(build(url))
    return url


@pytest.fixture(scope="module")
def postgres_rollup_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database seeded at scale 1 with every rollup built, dropped after."""
    name = asyncio.run(postgres_server.create_database())
    url = postgres_server.url(name)
    try:
        asyncio.run(migrate_and_seed(url))
        asyncio.run(build(url))
        yield url
    finally:
        asyncio.run(postgres_server.drop_database(name))


@pytest.fixture
async def fresh_sqlite(seeded_sqlite_template: Path, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """This test's own seeded SQLite store, rollups built, free to change."""
    copy = tmp_path / "store.db"
    shutil.copyfile(seeded_sqlite_template, copy)
    url = sqlite_url(copy)
    await build(url)
    engine = create_engine(Settings(database_url=url).store)
    try:
        yield engine
    finally:
        await engine.dispose()


async def both_ways(
    engine: AsyncEngine, queries: list[AnalyticsQuery]
) -> list[tuple[AnalyticsResult, AnalyticsResult]]:
    catalog = load_catalog()
    raw = SqlAnalyticsService(engine, catalog)
    routed = SqlAnalyticsService(engine, catalog, rollups=True)
    return [(await raw.query(query), await routed.query(query)) for query in queries]


def assert_identical(pairs: list[tuple[AnalyticsResult, AnalyticsResult]], queries: Any) -> int:
    """Every pair identical; returns how many were answered (at least partly) by rollups."""
    routed = 0
    for (raw, rolled), query in zip(pairs, queries, strict=True):
        assert raw.source == "raw"
        assert canonical(rolled) == canonical(raw), query
        routed += rolled.source != "raw"
    return routed


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def rollup_store(request: pytest.FixtureRequest) -> tuple[str, int]:
    """A seeded store of one dialect with its rollups built, and how many queries to draw."""
    url: str = request.getfixturevalue(f"{request.param}_rollup_url")
    generated = GENERATED_ON_SQLITE if request.param == "sqlite" else GENERATED_ON_POSTGRES
    return url, generated


async def test_rollups_answer_exactly_like_raw_rows(rollup_store: tuple[str, int]) -> None:
    url, generated = rollup_store
    queries = [*FROM_THE_ANALYTICS_TESTS, README_QUERY, *generated_queries(generated, seed=18)]
    # Some generated raw queries are slow on PostgreSQL (seconds, on this shared machine).
    engine = create_engine(Settings(database_url=url, database_timeout_seconds=120).store)
    try:
        pairs = await both_ways(engine, queries)
    finally:
        await engine.dispose()
    routed = assert_identical(pairs, queries)
    assert pairs[len(FROM_THE_ANALYTICS_TESTS)][1].source == "rollup", "the README's query"
    distinct = [
        query
        for (_, rolled), query in zip(pairs, queries, strict=True)
        if {"sessions", "converted_sessions", "conversion_rate"} & set(query.measures)
        and any(name.startswith("events_by_region") for name in rolled.rollups)
    ]
    assert len(distinct) >= 3, f"only {len(distinct)} distinct counts from key sets"
    # Not vacuous: a good share of the queries really were answered from rollups, and every
    # rollup (the coarser ones and the day grain too) answered some.
    assert routed >= len(queries) // 4, f"only {routed} of {len(queries)} routed"
    assert any(rolled.source == "rollup" for _, rolled in pairs)
    assert any(rolled.source == "mixed" for _, rolled in pairs)
    used = {name for _, rolled in pairs for name in rolled.rollups}
    assert used == set(load_catalog().rollups), used


def routed_query(**changes: Any) -> AnalyticsQuery:
    base: dict[str, Any] = {
        "measures": ("revenue", "average_order_value"),
        "dimensions": ("region",),
        "granularity": "week",
        "timezone": "Europe/Berlin",
        "start": datetime(2025, 3, 1),
        "end": datetime(2025, 5, 1),
    }
    return AnalyticsQuery(**{**base, **changes})


async def test_what_is_never_routed(fresh_sqlite: AsyncEngine) -> None:
    service = SqlAnalyticsService(fresh_sqlite, load_catalog(), rollups=True)
    assert (await service.query(routed_query())).source == "rollup"
    never = [
        routed_query(measures=("active_customers",)),  # a distinct count no rollup holds
        routed_query(timezone="Asia/Kathmandu"),  # +05:45
        routed_query(timezone="Australia/Lord_Howe"),  # half-hour DST change
        routed_query(start=datetime(2025, 3, 1, 0, 30)),  # not a whole hour
        routed_query(time_dimension="signed_up_at"),  # not the rollup's time
        routed_query(
            filters=(AnalyticsFilter("placed_at", "gte", (datetime(2025, 3, 2),)),)
        ),  # a filter on time values
    ]
    for query in never:
        result = await service.query(query)
        assert result.rollups in ((), ("order_items_hourly",)), query
        assert not ORDER_ROLLUPS & set(result.rollups), query
    # The UTC day grain answers only UTC queries by day or coarser over whole UTC days.
    daily = routed_query(timezone="UTC", granularity="month")
    assert (await service.query(daily)).rollups == ("orders_by_region_daily",)
    for query in (
        routed_query(),  # Berlin: its days are not UTC days
        routed_query(timezone="UTC", granularity="hour"),
        routed_query(timezone="UTC", start=datetime(2025, 3, 1, 6)),  # not a whole day
    ):
        assert (await service.query(query)).rollups == ("orders_by_region_hourly",), query


ORDER_ROLLUPS = {
    "orders_hourly",
    "orders_by_region_hourly",
    "orders_by_region_daily",
    "orders_by_region_berlin_monthly",
}
BERLIN = ZoneInfo("Europe/Berlin")
README_QUERY = AnalyticsQuery(
    measures=("revenue", "order_count", "conversion_rate"),
    dimensions=("region",),
    granularity="month",
    timezone="Europe/Berlin",
    start=datetime(2025, 1, 1),
    end=datetime(2025, 7, 1),
    order_by=(AnalyticsOrder("time"), AnalyticsOrder("revenue", descending=True)),
)


async def test_a_month_grain_of_a_zone_answers_that_zones_months(
    fresh_sqlite: AsyncEngine,
) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(fresh_sqlite, catalog)
    routed = SqlAnalyticsService(fresh_sqlite, catalog, rollups=True)
    months = dataclasses.replace(README_QUERY, measures=("revenue", "order_count"))
    result = await routed.query(months)
    assert result.rollups == ("orders_by_region_berlin_monthly",)
    assert canonical(result) == canonical(await raw.query(months))
    for query in (
        dataclasses.replace(months, granularity="quarter"),
        dataclasses.replace(  # the whole range in UTC: Berlin's months still hold it
            months,
            granularity=None,
            timezone="UTC",
            start=datetime(2025, 1, 1, tzinfo=BERLIN),
            end=datetime(2025, 7, 1, tzinfo=BERLIN),
            order_by=(),
        ),
        dataclasses.replace(months, filters=(AnalyticsFilter("sales_channel", "in", ("web",)),)),
    ):
        answer = await routed.query(query)
        assert answer.rollups == ("orders_by_region_berlin_monthly",), query
        assert canonical(answer) == canonical(await raw.query(query)), query
    for query in (
        dataclasses.replace(months, granularity="week"),  # weeks cut across months
        dataclasses.replace(months, timezone="UTC"),  # UTC's months
        dataclasses.replace(months, start=datetime(2025, 1, 1, tzinfo=UTC)),  # 01:00 in Berlin
        dataclasses.replace(months, start=datetime(2025, 1, 2)),  # not a whole month
    ):
        answer = await routed.query(query)
        assert "orders_by_region_berlin_monthly" not in answer.rollups, query
        assert canonical(answer) == canonical(await raw.query(query)), query

    # 22:30 UTC on 31 March is April in Berlin: the UTC day's counter moves, and both
    # Berlin months that day overlaps are stale until rebuilt; May and June are not.
    await insert_late_order(fresh_sqlite, datetime(2025, 3, 31, 22, 30, tzinfo=UTC))
    stale = await routed.query(months)
    assert "orders_by_region_berlin_monthly" not in stale.rollups
    assert canonical(stale) == canonical(await raw.query(months))
    later = dataclasses.replace(months, start=datetime(2025, 5, 1))
    assert (await routed.query(later)).rollups == ("orders_by_region_berlin_monthly",)
    summaries = await refresh_rollups(fresh_sqlite, catalog, ["orders_by_region_berlin_monthly"])
    assert summaries[0].rebuilt == ("2025-03", "2025-04")
    after = await routed.query(months)
    assert after.rollups == ("orders_by_region_berlin_monthly",)
    assert canonical(after) == canonical(stale)
    # Keys named are read in the rollup's zone: Berlin's 31 March is in Berlin's March.
    for named in (["2025-03"], ["2025-03-31"]):
        one = await refresh_rollups(
            fresh_sqlite, catalog, ["orders_by_region_berlin_monthly"], partitions=named
        )
        assert one[0].rebuilt == ("2025-03",), named


def test_a_partition_is_a_key_whose_unit_and_zone_give_its_utc_span() -> None:
    utc = functools.partial(datetime, tzinfo=UTC)
    assert partition_bounds("2025-03-30") == (utc(2025, 3, 30), utc(2025, 3, 31))
    assert partition_bounds("2025-03") == (utc(2025, 3, 1), utc(2025, 4, 1))
    # Berlin's March: from 23:00 UTC on 28 February to 22:00 UTC on 31 March (DST from the 30th).
    berlin = partition_bounds("2025-03", "Europe/Berlin")
    assert berlin == (utc(2025, 2, 28, 23), utc(2025, 3, 31, 22))
    assert partitions_over("month", berlin, "Europe/Berlin") == ("2025-03", "2025-03")
    assert partitions_over("month", berlin) == ("2025-02", "2025-03")
    assert partitions_over("day", berlin) == ("2025-02-28", "2025-03-31")
    assert counter_bounds("2025-03-31") == (utc(2025, 3, 31), utc(2025, 4, 1))

    # A UTC day's counter applies to each partition it overlaps: its day, its UTC month, and
    # one or two months of Berlin; a joined table's counters (customers) to every partition.
    catalog = load_catalog()
    counters = [
        ("orders", "2025-03-30", 2),
        ("orders", "2025-03-31", 5),
        ("orders", tables.ALL_PERIODS, 1),
        ("customers", tables.ALL_PERIODS, 10),
    ]
    expected = {
        "orders_hourly": {"2025-03-30": 13, "2025-03-31": 16},
        "orders_by_region_berlin_monthly": {"2025-03": 18, "2025-04": 16},
        "orders_by_region_daily": {"2025-03-30": 13, "2025-03-31": 16},
    }
    for name, changes in expected.items():
        assert partition_changes(catalog, catalog.rollups[name], counters) == changes, name


async def test_the_smallest_current_rollup_answers(fresh_sqlite: AsyncEngine) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(fresh_sqlite, catalog)
    routed = SqlAnalyticsService(fresh_sqlite, catalog, rollups=True)
    async with fresh_sqlite.connect() as connection:
        rows = dict(
            (
                await connection.execute(
                    sa.select(rollup_state.c.rollup, sa.func.sum(rollup_state.c.rows)).group_by(
                        rollup_state.c.rollup
                    )
                )
            ).all()
        )
    assert rows["orders_by_region_daily"] < rows["orders_by_region_hourly"] < rows["orders_hourly"]
    expected = {
        routed_query(timezone="UTC"): "orders_by_region_daily",
        routed_query(): "orders_by_region_hourly",  # Berlin weeks: hours
        routed_query(dimensions=("country",)): "orders_hourly",  # only it has countries
    }
    for query, rollup in expected.items():
        result = await routed.query(query)
        assert result.rollups == (rollup,), query
        assert canonical(result) == canonical(await raw.query(query))
    # The smallest one stale, the next smallest current one answers.
    await insert_late_order(fresh_sqlite, datetime(2025, 3, 20, 10, 15, tzinfo=UTC))
    await refresh_rollups(fresh_sqlite, catalog, ["orders_hourly"])
    stale_daily = routed_query(timezone="UTC")
    result = await routed.query(stale_daily)
    assert result.rollups == ("orders_hourly",)
    assert canonical(result) == canonical(await raw.query(stale_daily))


async def insert_late_order(engine: AsyncEngine, placed_at: datetime) -> None:
    async with engine.begin() as connection:
        customer = (
            await connection.execute(sa.select(sa.func.min(tables.customers.c.id)))
        ).scalar()
        await connection.execute(
            sa.insert(tables.orders).values(
                customer_id=customer,
                status="paid",
                channel="web",
                placed_at=placed_at,
                total_cents=123_456,
                currency="USD",
            )
        )


async def test_a_late_row_sends_its_partition_raw_until_refreshed(
    fresh_sqlite: AsyncEngine,
) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(fresh_sqlite, catalog)
    routed = SqlAnalyticsService(fresh_sqlite, catalog, rollups=True)
    query = routed_query()
    before = await routed.query(query)
    assert before.source == "rollup"

    await insert_late_order(fresh_sqlite, datetime(2025, 3, 20, 10, 15, tzinfo=UTC))
    stale = await routed.query(query)
    # The rollup's March no longer matches its source: the answer is raw, and includes it.
    assert stale.source == "raw"
    assert canonical(stale) == canonical(await raw.query(query))
    assert canonical(stale) != canonical(before)
    # A range that does not touch that UTC day still comes from the rollup: the same month
    # before it, and after it.
    elsewhere = routed_query(start=datetime(2025, 5, 1), end=datetime(2025, 6, 1))
    assert (await routed.query(elsewhere)).source == "rollup"
    same_month = [
        routed_query(start=datetime(2025, 3, 2), end=datetime(2025, 3, 20, 1)),
        routed_query(start=datetime(2025, 3, 21, 1), end=datetime(2025, 4, 1)),
    ]
    for query_around in same_month:
        assert (await routed.query(query_around)).source == "rollup"
    # Berlin's March 21 starts at 23:00 UTC on the 20th: it touches the day, so raw.
    touching = routed_query(start=datetime(2025, 3, 21), end=datetime(2025, 4, 1))
    assert (await routed.query(touching)).source == "raw"

    summaries = await refresh_rollups(fresh_sqlite, catalog, ["orders_hourly"])
    assert summaries[0].rebuilt == ("2025-03-20",), "only the changed day is rebuilt"
    assert summaries[0].unchanged > 500
    after = await routed.query(query)
    assert after.source == "rollup"
    assert canonical(after) == canonical(stale)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def changing_store_url(
    request: pytest.FixtureRequest, seeded_sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """This test's own seeded store of one dialect, rollups built, free to change."""
    if request.param == "sqlite":
        copy = tmp_path / "store.db"
        shutil.copyfile(seeded_sqlite_template, copy)
        asyncio.run(build(sqlite_url(copy)))
        yield sqlite_url(copy)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = asyncio.run(server.create_database())
    try:
        asyncio.run(migrate_and_seed(server.url(name)))
        asyncio.run(build(server.url(name)))
        yield server.url(name)
    finally:
        asyncio.run(server.drop_database(name))


@pytest.fixture
async def changing_store(changing_store_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(
        Settings(database_url=changing_store_url, database_timeout_seconds=120).store
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_an_update_in_place_sends_its_partition_raw_until_refreshed(
    changing_store: AsyncEngine,
) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(changing_store, catalog)
    routed = SqlAnalyticsService(changing_store, catalog, rollups=True)
    query = routed_query()
    before = await routed.query(query)
    assert before.source == "rollup"

    # Count, latest time and key sum stay the same: only the update triggers can tell.
    orders = tables.orders
    async with changing_store.begin() as connection:
        order_id = (
            await connection.execute(
                sa.select(sa.func.min(orders.c.id)).where(
                    orders.c.status == "delivered",
                    orders.c.placed_at >= datetime(2025, 3, 10, tzinfo=UTC),
                    orders.c.placed_at < datetime(2025, 3, 20, tzinfo=UTC),
                )
            )
        ).scalar_one()
        assert order_id is not None
        await connection.execute(
            sa.update(orders)
            .where(orders.c.id == order_id)
            .values(total_cents=orders.c.total_cents + 987_654)
        )
    stale = await routed.query(query)
    assert stale.source == "raw"
    assert canonical(stale) == canonical(await raw.query(query))
    assert canonical(stale) != canonical(before)
    elsewhere = routed_query(start=datetime(2025, 5, 1), end=datetime(2025, 6, 1))
    assert (await routed.query(elsewhere)).source == "rollup"

    summaries = await refresh_rollups(changing_store, catalog, ["orders_hourly"])
    assert len(summaries[0].rebuilt) == 1, "only the updated day is rebuilt"
    assert summaries[0].rebuilt[0].startswith("2025-03-1")
    after = await routed.query(query)
    assert after.source == "rollup"
    assert canonical(after) == canonical(await raw.query(query))

    # A customer has no time of its own: moving one to another region stales every month.
    customers = tables.customers
    async with changing_store.begin() as connection:
        await connection.execute(
            sa.update(customers)
            .where(
                customers.c.id
                == sa.select(orders.c.customer_id).where(orders.c.id == order_id).scalar_subquery()
            )
            .values(
                region=sa.case((customers.c.region == "europe", "asia_pacific"), else_="europe")
            )
        )
    moved = await routed.query(elsewhere)
    assert moved.source == "raw"
    assert "orders_hourly" not in (await routed.query(query)).rollups
    summaries = await refresh_rollups(changing_store, catalog, ["orders_hourly"])
    assert summaries[0].unchanged == 0, "every partition is rebuilt"
    for checked in (query, elsewhere):
        answer = await routed.query(checked)
        assert answer.source == "rollup"
        assert canonical(answer) == canonical(await raw.query(checked))


async def test_a_retimed_row_rebuilds_the_day_it_left_and_the_day_it_reached(
    changing_store: AsyncEngine,
) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(changing_store, catalog)
    routed = SqlAnalyticsService(changing_store, catalog, rollups=True)
    orders = tables.orders
    async with changing_store.begin() as connection:
        order_id = (
            await connection.execute(
                sa.select(sa.func.min(orders.c.id)).where(
                    orders.c.placed_at >= datetime(2025, 6, 5, tzinfo=UTC),
                    orders.c.placed_at < datetime(2025, 6, 6, tzinfo=UTC),
                )
            )
        ).scalar_one()
        assert order_id is not None
        await connection.execute(
            sa.update(orders)
            .where(orders.c.id == order_id)
            .values(placed_at=datetime(2025, 6, 12, 8, tzinfo=UTC))
        )
    query = routed_query(timezone="UTC", start=datetime(2025, 6, 1), end=datetime(2025, 7, 1))
    assert (await routed.query(query)).source == "raw"
    between = routed_query(timezone="UTC", start=datetime(2025, 6, 6), end=datetime(2025, 6, 12))
    assert (await routed.query(between)).source == "rollup"

    summaries = await refresh_rollups(changing_store, catalog)
    for summary in summaries:
        touched = {*summary.rebuilt, *summary.removed}
        if summary.rollup == "orders_by_region_berlin_monthly":
            # Berlin's months: both days lie in Berlin's June, one partition.
            assert touched == {"2025-06"}, summary
        elif summary.rollup.startswith("orders_"):
            assert touched == {"2025-06-05", "2025-06-12"}, summary
        elif summary.rollup == "order_items_hourly":
            # Its rows are filed by their order's time: the order moved, so both days.
            assert touched == {"2025-06-05", "2025-06-12"}, summary
        else:
            assert touched == set(), summary
    answer = await routed.query(query)
    assert answer.source == "rollup"
    assert canonical(answer) == canonical(await raw.query(query))


async def test_month_partitions_rebuild_their_month(
    fresh_sqlite: AsyncEngine, tmp_path: Path
) -> None:
    extra = tmp_path / "catalog.yaml"
    extra.write_text(
        """
rollups:
  - name: orders_hourly
    description: Revenue by hour and country, in UTC month partitions.
    source: orders
    measures: [revenue, order_count]
    dimensions: [country]
    partition: month
""",
        "utf-8",
    )
    catalog = load_catalog(extra)
    built = await refresh_rollups(fresh_sqlite, catalog, ["orders_hourly"])
    assert built[0].recreated
    assert len(built[0].rebuilt) == 18
    raw = SqlAnalyticsService(fresh_sqlite, catalog)
    routed = SqlAnalyticsService(fresh_sqlite, catalog, rollups=True)
    # Only this rollup has countries.
    query = routed_query(measures=("revenue", "order_count"), dimensions=("country",))
    around = routed_query(
        measures=("revenue",),
        dimensions=("country",),
        start=datetime(2025, 3, 2),
        end=datetime(2025, 3, 10),
    )
    assert (await routed.query(around)).source == "rollup"
    await insert_late_order(fresh_sqlite, datetime(2025, 3, 20, 10, 15, tzinfo=UTC))
    assert (await routed.query(query)).source == "raw"
    # Any day of the month is the month.
    assert (await routed.query(around)).source == "raw"
    summaries = await refresh_rollups(fresh_sqlite, catalog, ["orders_hourly"])
    assert summaries[0].rebuilt == ("2025-03",)
    answer = await routed.query(query)
    assert answer.source == "rollup"
    assert canonical(answer) == canonical(await raw.query(query))
    # A day named rebuilds the month holding it.
    one = await refresh_rollups(fresh_sqlite, catalog, ["orders_hourly"], partitions=["2025-04-09"])
    assert one[0].rebuilt == ("2025-04",)


async def test_a_partition_is_swapped_in_one_transaction(fresh_sqlite: AsyncEngine) -> None:
    catalog = load_catalog()
    table = "analytics_rollup_orders_hourly"
    april = "partition BETWEEN '2025-04-01' AND '2025-04-30'"
    async with fresh_sqlite.connect() as connection:
        before = (
            await connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {april}"))
        ).scalar()
    summaries = await refresh_rollups(
        fresh_sqlite, catalog, ["orders_hourly"], partitions=["2025-04"]
    )
    # A month named is its days (those holding rows), swapped together.
    assert summaries[0].rebuilt
    assert all(day.startswith("2025-04-") for day in summaries[0].rebuilt)
    async with fresh_sqlite.connect() as connection:
        after = (
            await connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {april}"))
        ).scalar()
        states = (
            await connection.execute(
                sa.select(rollup_state.c.partition, rollup_state.c.rows).where(
                    rollup_state.c.rollup == "orders_hourly",
                    rollup_state.c.partition.startswith("2025-04"),
                )
            )
        ).all()
    assert before == after == summaries[0].rows == sum(rows for _, rows in states)
    assert {day for day, _ in states} == {*summaries[0].rebuilt, *summaries[0].removed}
    one_day = await refresh_rollups(
        fresh_sqlite, catalog, ["orders_hourly"], partitions=["2025-04-10"]
    )
    assert one_day[0].rebuilt == ("2025-04-10",)


async def test_a_changed_definition_recreates_the_table(
    fresh_sqlite: AsyncEngine, tmp_path: Path
) -> None:
    extra = tmp_path / "catalog.yaml"
    extra.write_text(
        """
rollups:
  - name: orders_hourly
    description: Revenue by hour and country only.
    source: orders
    measures: [revenue]
    dimensions: [country]
""",
        "utf-8",
    )
    changed = load_catalog(extra)
    routed = SqlAnalyticsService(fresh_sqlite, changed, rollups=True)
    query = routed_query(measures=("revenue",), dimensions=("country",))
    # Built from the old definition: not current for the new one.
    assert (await routed.query(query)).source == "raw"
    summaries = await refresh_rollups(fresh_sqlite, changed, ["orders_hourly"])
    assert summaries[0].recreated
    result = await routed.query(query)
    assert result.source == "rollup"
    raw = SqlAnalyticsService(fresh_sqlite, changed)
    assert canonical(result) == canonical(await raw.query(query))


ROLLUP_ERRORS = {
    "other source": (
        "source: orders\n    measures: [units_sold]",
        "not only the rollup's source 'orders'",
    ),
    "hour grain of a zone": (
        "source: orders\n    measures: [revenue]\n    zone: Europe/Berlin",
        "an hour grain is UTC's hours",
    ),
    "day partitions of a month grain": (
        "source: orders\n    measures: [revenue]\n    grain: month\n    partition: day",
        "a month grain is partitioned by months (partition: month), not days",
    ),
    "day partitions of another zone": (
        "source: orders\n    measures: [revenue]\n    grain: day\n    zone: Europe/Berlin\n"
        "    partition: day",
        "a grain of zone 'Europe/Berlin' is partitioned by months",
    ),
    "unknown zone": (
        "source: orders\n    measures: [revenue]\n    grain: day\n    zone: Europe/Berlinn",
        "zone 'Europe/Berlinn' is not an IANA time zone",
    ),
    "unreachable dimension": (
        "source: orders\n    measures: [revenue]\n    dimensions: [event_type]",
        "'event_type' is not reachable from source 'orders'",
    ),
}


@pytest.mark.parametrize(("lines", "message"), ROLLUP_ERRORS.values(), ids=ROLLUP_ERRORS)
def test_rollups_that_cannot_be_exact_are_refused(tmp_path: Path, lines: str, message: str) -> None:
    extra = tmp_path / "catalog.yaml"
    extra.write_text(f"rollups:\n  - name: bad\n    description: d\n    {lines}\n", "utf-8")
    with pytest.raises(AnalyticsCatalogError) as raised:
        load_catalog(extra)
    assert message in str(raised.value)


async def test_without_built_rollups_queries_read_raw_rows(
    seeded_sqlite_template: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "store.db"
    shutil.copyfile(seeded_sqlite_template, copy)
    engine = create_engine(Settings(database_url=sqlite_url(copy)).store)
    try:
        result = await SqlAnalyticsService(engine, load_catalog(), rollups=True).query(
            routed_query()
        )
    finally:
        await engine.dispose()
    assert result.source == "raw"
    assert result.rollups == ()
    assert result.rollup_built_at is None


async def test_the_readme_query_is_answered_from_rollups(fresh_sqlite: AsyncEngine) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(fresh_sqlite, catalog)
    routed = SqlAnalyticsService(fresh_sqlite, catalog, rollups=True)
    result = await routed.query(README_QUERY)
    assert result.source == "rollup"
    assert result.rollups == ("orders_by_region_berlin_monthly", "events_by_region_berlin_monthly")
    expected = await raw.query(README_QUERY)
    assert canonical(result) == canonical(expected)
    # Not vacuous: sessions in several cells (a sign-up's anonymous page view and its
    # customer's sign-up) are in several rows, and once in the totals.
    sessions = dataclasses.replace(README_QUERY, measures=("sessions",), order_by=())
    rolled = await routed.query(sessions)
    assert rolled.rollups == ("events_by_region_berlin_monthly",)
    assert canonical(rolled) == canonical(await raw.query(sessions))
    by_rows = sum(row.measures[0].value or 0 for row in rolled.rows)
    assert (rolled.totals[0].value or 0) < by_rows


async def test_distinct_counts_that_cannot_be_proven_read_raw_rows(
    fresh_sqlite: AsyncEngine,
) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(fresh_sqlite, catalog)
    routed = SqlAnalyticsService(fresh_sqlite, catalog, rollups=True)
    sessions = dataclasses.replace(README_QUERY, measures=("sessions", "page_views"), order_by=())
    assert (await routed.query(sessions)).source == "rollup"
    never = [
        # Totals over the groups a measure filter keeps: each key set's cells in all of them.
        dataclasses.replace(sessions, filters=(AnalyticsFilter("sessions", "gt", (5.0,)),)),
        dataclasses.replace(sessions, dimensions=("event_type",)),  # not a rollup dimension
        dataclasses.replace(sessions, time_dimension="signed_up_at"),
    ]
    for query in never:
        answer = await routed.query(query)
        assert answer.source == "raw", query
        assert canonical(answer) == canonical(await raw.query(query)), query
    # A measure filter without distinct counts of the source still routes it.
    page_views = dataclasses.replace(
        sessions, measures=("page_views",), filters=(AnalyticsFilter("page_views", "gt", (5.0,)),)
    )
    assert (await routed.query(page_views)).source == "rollup"


async def insert_event(engine: AsyncEngine, session_id: str, occurred_at: datetime) -> None:
    async with engine.begin() as connection:
        customer = (
            await connection.execute(sa.select(sa.func.min(tables.customers.c.id)))
        ).scalar()
        await connection.execute(
            sa.insert(tables.events).values(
                customer_id=customer,
                session_id=session_id,
                type="page_view",
                channel="web",
                occurred_at=occurred_at,
            )
        )


async def test_a_session_spread_to_another_month_stales_only_that_month(
    changing_store: AsyncEngine,
) -> None:
    catalog = load_catalog()
    raw = SqlAnalyticsService(changing_store, catalog)
    routed = SqlAnalyticsService(changing_store, catalog, rollups=True)
    totals = dataclasses.replace(README_QUERY, measures=("sessions",), order_by=())
    before = await routed.query(totals)
    assert before.source == "rollup"
    async with changing_store.connect() as connection:
        session = (
            await connection.execute(
                sa.select(tables.events.c.session_id)
                .where(tables.events.c.occurred_at >= datetime(2025, 2, 10, tzinfo=UTC))
                .order_by(tables.events.c.occurred_at)
                .limit(1)
            )
        ).scalar_one()
    # The same session seen again in May: the ranges over May read raw rows until May is
    # rebuilt; February's cells did not change, so February's distinct counts stay exact.
    await insert_event(changing_store, session, datetime(2025, 5, 20, 12, tzinfo=UTC))
    february = dataclasses.replace(totals, start=datetime(2025, 2, 1), end=datetime(2025, 3, 1))
    stale = await routed.query(totals)
    assert stale.source == "raw"
    assert canonical(stale) == canonical(await raw.query(totals))
    kept = await routed.query(february)
    assert kept.source == "rollup"
    assert canonical(kept) == canonical(await raw.query(february))
    now = await raw.query(totals)
    assert now.totals == before.totals, "one session, still one in the totals"
    assert canonical(now) != canonical(before), "and now in May's row too"

    summaries = await refresh_rollups(
        changing_store, catalog, ["events_by_region_berlin_monthly", "events_by_region_daily"]
    )
    # 20 May's UTC day counter moved: the Berlin month it lies in; in the UTC day
    # partitions, that day alone (the session's key sets are kept with it).
    assert summaries[0].rebuilt == ("2025-05",)
    assert summaries[1].rebuilt == ("2025-05-20",)
    after = await routed.query(totals)
    assert after.source == "rollup"
    assert canonical(after) == canonical(now)
    # The session is now kept with a cell in February and one in May.
    rollup = catalog.rollups["events_by_region_berlin_monthly"]
    cells = key_cells_table(catalog, rollup, distinct_raws(catalog, rollup)[0])
    async with changing_store.connect() as connection:
        held = await connection.execute(
            sa.select(cells.c.partition).where(cells.c["key"] == session)
        )
        assert sorted(held.scalars()) == ["2025-02", "2025-05"]
    daily = dataclasses.replace(
        totals,
        granularity="day",
        timezone="UTC",
        start=datetime(2025, 5, 1),
        end=datetime(2025, 6, 1),
    )
    answer = await routed.query(daily)
    assert answer.rollups == ("events_by_region_daily",)
    assert canonical(answer) == canonical(await raw.query(daily))


def _cell_sets_of(rows: list[Any], rollup_zone: str, grain: str) -> Counter[frozenset[Any]]:
    """From (key, moment, dimension values...) rows: how many keys have each set of cells,
    for the keys in more than one cell, computed here in Python."""
    zone = ZoneInfo(rollup_zone)
    shape = "%Y-%m" if grain == "month" else "%Y-%m-%d"
    cells: dict[Any, set[tuple[Any, ...]]] = {}
    for key, moment, *dimensions in rows:
        cells.setdefault(key, set()).add((moment.astimezone(zone).strftime(shape), *dimensions))
    return Counter(frozenset(found) for found in cells.values() if len(found) > 1)


async def _kept_cell_sets(
    engine: AsyncEngine, rollup_name: str
) -> dict[int, Counter[frozenset[Any]]]:
    """Per distinct count of a rollup, how many keys its key sets say have each set of cells."""
    catalog = load_catalog()
    rollup = catalog.rollups[rollup_name]
    sets = key_sets_table(catalog, rollup)
    zone = ZoneInfo(rollup.zone)
    shape = "%Y-%m" if rollup.grain == "month" else "%Y-%m-%d"
    kept: dict[int, Counter[frozenset[Any]]] = {}
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(sets))
        grouped: dict[tuple[int, str], tuple[int, set[tuple[Any, ...]]]] = {}
        for row in rows:
            cell = (row.bucket.astimezone(zone).strftime(shape), *row[3:-1])
            count, cells = grouped.setdefault((row.raw, row.key_set), (row._mapping["keys"], set()))
            cells.add(cell)
        for (position, _), (count, cells) in grouped.items():
            kept.setdefault(position, Counter())[frozenset(cells)] += count
    return kept


async def _assert_kept_key_sets_are_counted_ones(engine: AsyncEngine, names: list[str]) -> None:
    """The key sets of the rollups named equal those counted here from every row, and routed
    distinct counts equal raw ones."""
    catalog = load_catalog()
    for name in names:
        rollup = catalog.rollups[name]
        raws = rollup_raws(catalog, rollup)
        source = catalog.sources[rollup.source]
        moment = column(catalog.dimensions[source.time_dimension].column)
        dimensions = [column(catalog.dimensions[each].column) for each in rollup.dimensions]
        kept = await _kept_cell_sets(engine, name)
        for position in distinct_raws(catalog, rollup):
            raw_aggregate = raws[position]
            key = column(raw_aggregate.column)
            conditions = [column(ref).in_(allowed) for ref, allowed in raw_aggregate.where]
            async with engine.connect() as connection:
                rows = list(
                    await connection.execute(
                        sa.select(key, moment, *dimensions)
                        .select_from(joined_source(catalog.sources[rollup.source]))
                        .where(key.is_not(None), *conditions)
                    )
                )
            expected = _cell_sets_of(rows, rollup.zone, rollup.grain)
            assert kept.get(position, Counter()) == expected, (name, position)
    raw = SqlAnalyticsService(engine, catalog)
    routed = SqlAnalyticsService(engine, catalog, rollups=True)
    for query in (
        dataclasses.replace(README_QUERY, measures=("sessions", "conversion_rate"), order_by=()),
        dataclasses.replace(
            README_QUERY,
            measures=("sessions", "converted_sessions"),
            order_by=(),
            granularity="week",
            timezone="UTC",
        ),
    ):
        answer = await routed.query(query)
        assert answer.source == "rollup", query
        assert canonical(answer) == canonical(await raw.query(query)), query


async def test_kept_key_sets_equal_the_sets_counted_from_the_rows_after_changes(
    changing_store: AsyncEngine,
) -> None:
    """Late rows, deletes and re-timed rows refreshed day by day, then a customer moved to
    another region: the key sets kept equal those counted from every row, answers are exact."""
    catalog = load_catalog()
    names = ["events_by_region_berlin_monthly", "events_by_region_daily"]
    events, customers = tables.events, tables.customers
    daily = catalog.rollups["events_by_region_daily"]
    daily_cells = key_cells_table(catalog, daily, distinct_raws(catalog, daily)[0])
    async with changing_store.begin() as connection:
        picked = list(
            await connection.execute(
                sa.select(events.c.id, events.c.session_id, events.c.occurred_at)
                .where(events.c.occurred_at >= datetime(2025, 3, 1, tzinfo=UTC))
                .order_by(events.c.id)
                .limit(12)
            )
        )
        # Re-timed into another day and month, deleted, re-timed and converted.
        await connection.execute(
            sa.update(events)
            .where(events.c.id == picked[0].id)
            .values(occurred_at=picked[0].occurred_at + timedelta(days=40))
        )
        await connection.execute(sa.delete(events).where(events.c.id == picked[1].id))
        await connection.execute(
            sa.update(events)
            .where(events.c.id == picked[2].id)
            .values(type="purchase", occurred_at=picked[2].occurred_at + timedelta(hours=30))
        )
        # A session kept in two days loses its rows of the first: only the key sets know it
        # was there (no row of that day counts it any more, the other day is unchanged).
        session, day = (
            await connection.execute(
                sa.select(daily_cells.c["key"], sa.func.min(daily_cells.c.partition))
                .where(daily_cells.c.partition >= "2025-03-01")
                .group_by(daily_cells.c["key"])
                .having(sa.func.count() == 2)
                .order_by(daily_cells.c["key"])
                .limit(1)
            )
        ).one()
        start, end = partition_bounds(day)
        await connection.execute(
            sa.delete(events).where(
                events.c.session_id == session,
                events.c.occurred_at >= start,
                events.c.occurred_at < end,
            )
        )
    # Sessions seen again: later, and at the same moment.
    await insert_event(changing_store, picked[4].session_id, datetime(2025, 7, 2, 23, tzinfo=UTC))
    await insert_event(changing_store, picked[5].session_id, picked[5].occurred_at)
    summaries = await refresh_rollups(changing_store, catalog, names)
    assert all(0 < len(summary.rebuilt) + len(summary.removed) < 10 for summary in summaries)
    await _assert_kept_key_sets_are_counted_ones(changing_store, names)

    # A customer moved to another region: every partition of the rollups joining customers.
    async with changing_store.begin() as connection:
        customer, region = (
            await connection.execute(
                sa.select(customers.c.id, customers.c.region)
                .join(events, events.c.customer_id == customers.c.id)
                .where(events.c.id >= picked[3].id)
                .limit(1)
            )
        ).one()
        moved = next(other for other in REGIONS if other != region)
        await connection.execute(
            sa.update(customers).where(customers.c.id == customer).values(region=moved)
        )
    await refresh_rollups(changing_store, catalog, names)
    await _assert_kept_key_sets_are_counted_ones(changing_store, names)


async def test_distinct_counts_from_an_hour_grain_in_other_zones(
    fresh_sqlite: AsyncEngine, tmp_path: Path
) -> None:
    extra = tmp_path / "catalog.yaml"
    extra.write_text(
        """
rollups:
  - name: events_hourly
    description: Sessions and page views by hour, region, tier and event channel.
    source: events
    measures: [sessions, converted_sessions, conversion_rate, page_views]
    dimensions: [region, customer_tier, event_channel]
""",
        "utf-8",
    )
    catalog = load_catalog(extra)
    await refresh_rollups(fresh_sqlite, catalog, ["events_hourly"])
    raw = SqlAnalyticsService(fresh_sqlite, catalog)
    routed = SqlAnalyticsService(fresh_sqlite, catalog, rollups=True)
    chance = random.Random(7)
    queries = [
        AnalyticsQuery(
            measures=tuple(chance.sample(("sessions", "conversion_rate", "page_views"), 2)),
            dimensions=tuple(chance.sample(("region", "customer_tier", "event_channel"), 1)),
            granularity=chance.choice(("hour", "day", "week", "month", None)),
            timezone=chance.choice(("America/New_York", "Asia/Tokyo", "America/Santiago")),
            start=datetime(2025, 1, 1) + timedelta(days=chance.randint(0, 400)),
            end=datetime(2025, 1, 1) + timedelta(days=chance.randint(401, 520)),
            filters=(AnalyticsFilter("event_channel", "not_in", ("marketplace",)),),
        )
        for _ in range(12)
    ]
    for query in queries:
        answer = await routed.query(query)
        assert answer.rollups == ("events_hourly",), query
        assert canonical(answer) == canonical(await raw.query(query)), query
