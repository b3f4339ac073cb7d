"""The analytics service against values computed independently from the seeded rows.

Every expectation is aggregated here in Python (zoneinfo for the buckets) from rows read
with plain selects; the service's own output is never the reference. Each test runs on
SQLite and on PostgreSQL, and one test compares the two dialects value for value.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError, ErrorCode
from dataintel.services.analytics import (
    MAXIMUM_LIMIT,
    AnalyticsCatalogError,
    AnalyticsFilter,
    AnalyticsOrder,
    AnalyticsQuery,
    AnalyticsResult,
    SqlAnalyticsService,
    load_catalog,
)
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.seed import migrate_and_seed
from tests.plugins.statements import counting_statements
from tests.plugins.store import PostgresServer, sqlite_url

BILLABLE = frozenset({"placed", "paid", "shipped", "delivered"})
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")

Row = Any
Key = tuple[Hashable, ...]


# --- The seeded rows, read with plain selects --------------------------------------------


@dataclass(frozen=True, slots=True)
class Seeded:
    customers: dict[int, Row]
    products: dict[int, Row]
    orders: dict[int, Row]
    items: list[Row]
    events: list[Row]


@dataclass(frozen=True, slots=True)
class Store:
    dialect: str
    url: str
    rows: Seeded


async def read_seeded(url: str) -> Seeded:
    engine = create_engine(Settings(database_url=url).store)
    try:
        async with engine.connect() as connection:

            async def everything(table: sa.Table) -> list[Row]:
                return list((await connection.execute(sa.select(table))).all())

            customers = {row.id: row for row in await everything(tables.customers)}
            products = {row.id: row for row in await everything(tables.products)}
            orders = {row.id: row for row in await everything(tables.orders)}
            items = await everything(tables.order_items)
            events = await everything(tables.events)
        return Seeded(customers, products, orders, items, events)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def sqlite_store_url(seeded_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of the seeded SQLite template that this module only reads."""
    copy = tmp_path_factory.mktemp("analytics") / "store.db"
    shutil.copyfile(seeded_sqlite_template, copy)
    return sqlite_url(copy)


@pytest.fixture(scope="module")
def postgres_store_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A PostgreSQL database seeded at scale 1 for this module, dropped after it."""
    name = asyncio.run(postgres_server.create_database())
    url = postgres_server.url(name)
    try:
        asyncio.run(migrate_and_seed(url))
        yield url
    finally:
        asyncio.run(postgres_server.drop_database(name))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(request: pytest.FixtureRequest) -> Store:
    """The seeded store of one dialect and its rows, read once per module."""
    url: str = request.getfixturevalue(f"{request.param}_store_url")
    return Store(request.param, url, asyncio.run(read_seeded(url)))


@pytest.fixture
async def engine(store: Store) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=store.url).store)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def service(engine: AsyncEngine) -> SqlAnalyticsService:
    return SqlAnalyticsService(engine, load_catalog())


# --- The independent computation ---------------------------------------------------------


def bucket(moment: datetime, granularity: str, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the moment's bucket starts in the zone."""
    local = moment.astimezone(zone)
    if granularity == "hour":
        # replace keeps fold, so the repeated 01:00 of a fall-back night stays the later one.
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day: date = local.date()
    if granularity == "week":
        day -= timedelta(days=day.weekday())
    elif granularity == "month":
        day = day.replace(day=1)
    elif granularity == "quarter":
        day = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    elif granularity == "year":
        day = day.replace(month=1, day=1)
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def grouped(rows: Iterable[Row], key: Callable[[Row], Key]) -> dict[Key, list[Row]]:
    groups: defaultdict[Key, list[Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return dict(groups)


def revenue(orders: Iterable[Row]) -> float:
    cents: int = sum(order.total_cents for order in orders if order.status in BILLABLE)
    return cents / 100


def billable(orders: Iterable[Row]) -> int:
    return sum(1 for order in orders if order.status in BILLABLE)


def average_order_value(orders: list[Row]) -> float | None:
    count = billable(orders)
    return revenue(orders) / count if count else None


def sessions(events: Iterable[Row]) -> int:
    return len({event.session_id for event in events})


def conversion_rate(events: list[Row]) -> float | None:
    total = sessions(events)
    converted = len({event.session_id for event in events if event.type == "purchase"})
    return converted / total if total else None


def within(moment: datetime, start: datetime, end: datetime) -> bool:
    return start <= moment < end


def by_key(result: AnalyticsResult) -> dict[Key, dict[str, float | None]]:
    """The result's rows by (bucket start in UTC, dimension values...)."""
    rows: dict[Key, dict[str, float | None]] = {}
    for row in result.rows:
        moment = row.time.astimezone(UTC) if row.time is not None else None
        key = (moment, *(value.value for value in row.dimensions))
        assert key not in rows, f"two rows for {key}"
        rows[key] = {value.name: value.value for value in row.measures}
    return rows


def totals(result: AnalyticsResult) -> dict[str, float | None]:
    return {value.name: value.value for value in result.totals}


def assert_offsets(result: AnalyticsResult, zone: ZoneInfo) -> None:
    """Every bucket start carries the zone's offset at that instant."""
    for row in result.rows:
        assert row.time is not None
        assert row.time.utcoffset() == row.time.astimezone(UTC).astimezone(zone).utcoffset()


def close(value: float | None) -> Any:
    return None if value is None else pytest.approx(value, rel=1e-12)


# --- The catalog -------------------------------------------------------------------------


def test_built_in_catalog_has_the_measures_and_dimensions() -> None:
    catalog = load_catalog()
    assert {
        "revenue",
        "order_count",
        "average_order_value",
        "active_customers",
        "units_sold",
        "sessions",
        "conversion_rate",
        "new_customers",
    } <= set(catalog.measures)
    assert {
        "region",
        "country",
        "customer_tier",
        "acquisition_channel",
        "sales_channel",
        "order_status",
        "product_category",
        "event_type",
    } <= set(catalog.dimensions)
    assert catalog.measures["revenue"].unit == "USD"
    assert catalog.measures["conversion_rate"].aggregation == "ratio"
    assert catalog.sources_of(catalog.measures["average_order_value"]) == ("orders",)
    assert "product_category" in catalog.dimensions_of(catalog.measures["units_sold"])
    assert "product_category" not in catalog.dimensions_of(catalog.measures["sessions"])
    assert {source.time_dimension for source in catalog.sources.values()} == {
        "placed_at",
        "occurred_at",
        "signed_up_at",
    }


def test_an_operator_file_adds_and_overrides_entries(tmp_path: Path) -> None:
    extra = tmp_path / "catalog.yaml"
    extra.write_text(
        """
dimensions:
  - name: product_name
    type: string
    column: products.name
    description: The product's name.
measures:
  - name: revenue
    description: Every order's total, refunds included.
    unit: USD
    aggregation: sum
    source: orders
    column: orders.total_cents
    scale: 0.01
  - name: lines
    description: Order lines.
    unit: count
    aggregation: count
    source: order_items
""",
        "utf-8",
    )
    catalog = load_catalog(extra)
    assert catalog.measures["revenue"].description == "Every order's total, refunds included."
    assert catalog.measures["revenue"].where == ()
    assert catalog.measures["lines"].column == "order_items.id"
    assert "product_name" in catalog.dimensions_of(catalog.measures["lines"])
    # Built-in entries that were not overridden stay.
    assert "sessions" in catalog.measures


CATALOG_ERRORS = {
    "unknown column": (
        "measures: [{name: m, description: d, unit: count, aggregation: sum,"
        " source: orders, column: orders.nope}]",
        "table 'orders' has no column 'nope'",
    ),
    "unknown table": (
        "dimensions: [{name: d, description: d, type: string, column: users.email}]",
        "not table.column of a known table",
    ),
    "column not reachable": (
        "measures: [{name: m, description: d, unit: count, aggregation: sum,"
        " source: events, column: orders.total_cents}]",
        "source 'events' does not reach",
    ),
    "where dimension not reachable": (
        "measures: [{name: m, description: d, unit: count, aggregation: count,"
        " source: events, where: {product_category: [books]}}]",
        "where dimension 'product_category' is not reachable from source 'events'",
    ),
    "time dimension not reachable": (
        "sources: [{name: s, description: d, table: products, time_dimension: placed_at}]",
        "time dimension 'placed_at' is on table 'orders'",
    ),
    "sum of text": (
        "measures: [{name: m, description: d, unit: count, aggregation: sum,"
        " source: orders, column: orders.status}]",
        "'sum' needs a numeric column",
    ),
    "ratio of a ratio": (
        "measures: [{name: m, description: d, unit: ratio, aggregation: ratio,"
        " numerator: conversion_rate, denominator: sessions}]",
        "'conversion_rate' does not",
    ),
    "join from nowhere": (
        "sources: [{name: s, description: d, table: events, time_dimension: occurred_at,"
        " joins: [{table: products, key: orders.id, references: products.id}]}]",
        "must be on a table already in the source",
    ),
    "name taken": (
        "dimensions: [{name: revenue, description: d, type: string, column: orders.status}]",
        "either a measure or a dimension",
    ),
    "unknown key": ("measures: [{name: m, colour: red}]", "is not an analytics catalog"),
    "not yaml": ("measures: [", "is not valid YAML"),
}


@pytest.mark.parametrize(("text", "message"), CATALOG_ERRORS.values(), ids=CATALOG_ERRORS)
def test_catalog_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    extra = tmp_path / "catalog.yaml"
    extra.write_text(text, "utf-8")
    with pytest.raises(AnalyticsCatalogError) as raised:
        load_catalog(extra)
    assert message in str(raised.value)
    assert str(extra) in str(raised.value), "the error names the file"


# --- Queries -----------------------------------------------------------------------------


async def test_several_measures_by_region_and_month(
    service: SqlAnalyticsService, store: Store
) -> None:
    start, end = datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC)
    result = await service.query(
        AnalyticsQuery(
            measures=("revenue", "order_count", "average_order_value", "active_customers"),
            dimensions=("region",),
            granularity="month",
            start=start,
            end=end,
        )
    )
    customers = store.rows.customers
    orders = [o for o in store.rows.orders.values() if within(o.placed_at, start, end)]
    groups = grouped(
        orders,
        lambda o: (bucket(o.placed_at, "month", ZoneInfo("UTC")), customers[o.customer_id].region),
    )
    expected = {
        key: {
            "revenue": revenue(rows),
            "order_count": len(rows),
            "average_order_value": close(average_order_value(rows)),
            "active_customers": len({o.customer_id for o in rows if o.status in BILLABLE}),
        }
        for key, rows in groups.items()
    }
    assert by_key(result) == expected
    assert len(expected) == 6 * 4
    assert totals(result) == {
        "revenue": revenue(orders),
        "order_count": len(orders),
        "average_order_value": close(average_order_value(orders)),
        "active_customers": len({o.customer_id for o in orders if o.status in BILLABLE}),
    }
    assert not result.truncated
    # Rows come by time, then region.
    keys = [(row.time, row.dimensions[0].value) for row in result.rows]
    assert keys == sorted(keys, key=lambda key: (key[0] or start, key[1] or ""))


async def test_days_follow_the_dst_change_in_new_york(
    service: SqlAnalyticsService, store: Store
) -> None:
    # Clocks went forward on 2025-03-09: that day has 23 hours.
    start = datetime(2025, 3, 6, tzinfo=NEW_YORK)
    end = datetime(2025, 3, 13, tzinfo=NEW_YORK)
    result = await service.query(
        AnalyticsQuery(
            measures=("sessions", "page_views", "revenue"),
            granularity="day",
            timezone="America/New_York",
            start=datetime(2025, 3, 6),
            end=datetime(2025, 3, 13),
        )
    )
    events = [e for e in store.rows.events if within(e.occurred_at, start, end)]
    orders = [o for o in store.rows.orders.values() if within(o.placed_at, start, end)]
    event_days = grouped(events, lambda e: (bucket(e.occurred_at, "day", NEW_YORK),))
    order_days = grouped(orders, lambda o: (bucket(o.placed_at, "day", NEW_YORK),))
    expected = {
        key: {
            "sessions": sessions(event_days.get(key, [])),
            "page_views": sum(1 for e in event_days.get(key, []) if e.type == "page_view"),
            "revenue": revenue(order_days.get(key, [])),
        }
        for key in event_days.keys() | order_days.keys()
    }
    assert by_key(result) == expected
    assert_offsets(result, NEW_YORK)
    starts = [row.time for row in result.rows]
    assert [moment.isoformat() for moment in starts if moment is not None][2:5] == [
        "2025-03-08T00:00:00-05:00",
        "2025-03-09T00:00:00-05:00",
        "2025-03-10T00:00:00-04:00",
    ]
    assert result.start == start
    assert result.end == end
    assert totals(result)["sessions"] == sessions(events)


async def test_a_day_whose_midnight_is_skipped_starts_when_the_clocks_jump(
    service: SqlAnalyticsService, store: Store
) -> None:
    santiago = ZoneInfo("America/Santiago")
    start, end = datetime(2025, 9, 5, tzinfo=santiago), datetime(2025, 9, 10, tzinfo=santiago)
    result = await service.query(
        AnalyticsQuery(
            measures=("sessions",),
            granularity="day",
            timezone="America/Santiago",
            start=start,
            end=end,
        )
    )
    events = [e for e in store.rows.events if within(e.occurred_at, start, end)]
    days = grouped(events, lambda e: (bucket(e.occurred_at, "day", santiago),))
    assert by_key(result) == {key: {"sessions": sessions(rows)} for key, rows in days.items()}
    starts = [row.time.isoformat() for row in result.rows if row.time is not None]
    assert "2025-09-07T01:00:00-03:00" in starts


async def test_the_repeated_hour_of_a_fall_back_night_is_two_buckets(
    service: SqlAnalyticsService, store: Store
) -> None:
    # On 2025-11-02 New York saw 01:00-02:00 twice, at -04:00 and then at -05:00.
    start = datetime(2025, 11, 1, 22, tzinfo=NEW_YORK)
    end = datetime(2025, 11, 2, 5, tzinfo=NEW_YORK)
    result = await service.query(
        AnalyticsQuery(
            measures=("sessions", "order_count"),
            granularity="hour",
            timezone="America/New_York",
            start=start,
            end=end,
        )
    )
    events = [e for e in store.rows.events if within(e.occurred_at, start, end)]
    orders = [o for o in store.rows.orders.values() if within(o.placed_at, start, end)]
    event_hours = grouped(events, lambda e: (bucket(e.occurred_at, "hour", NEW_YORK),))
    order_hours = grouped(orders, lambda o: (bucket(o.placed_at, "hour", NEW_YORK),))
    expected = {
        key: {
            "sessions": sessions(event_hours.get(key, [])),
            "order_count": len(order_hours.get(key, [])),
        }
        for key in event_hours.keys() | order_hours.keys()
    }
    assert by_key(result) == expected
    assert_offsets(result, NEW_YORK)
    local_starts = [row.time.isoformat() for row in result.rows if row.time is not None]
    repeated = [moment for moment in local_starts if moment.startswith("2025-11-02T01:00")]
    assert repeated == ["2025-11-02T01:00:00-04:00", "2025-11-02T01:00:00-05:00"]


async def test_weeks_start_on_monday_across_the_berlin_dst_change(
    service: SqlAnalyticsService, store: Store
) -> None:
    result = await service.query(
        AnalyticsQuery(
            measures=("units_sold", "average_unit_price"),
            dimensions=("product_category",),
            granularity="week",
            timezone="Europe/Berlin",
            start=datetime(2025, 3, 17),
            end=datetime(2025, 4, 14),
        )
    )
    start = datetime(2025, 3, 17, tzinfo=BERLIN)
    end = datetime(2025, 4, 14, tzinfo=BERLIN)
    orders, products = store.rows.orders, store.rows.products
    lines = [
        item
        for item in store.rows.items
        if within(orders[item.order_id].placed_at, start, end)
        and orders[item.order_id].status in BILLABLE
    ]
    groups = grouped(
        lines,
        lambda item: (
            bucket(orders[item.order_id].placed_at, "week", BERLIN),
            products[item.product_id].category,
        ),
    )
    expected = {
        key: {
            "units_sold": sum(item.quantity for item in rows),
            "average_unit_price": close(
                sum(item.unit_price_cents for item in rows) / 100 / len(rows)
            ),
        }
        for key, rows in groups.items()
    }
    assert by_key(result) == expected
    assert_offsets(result, BERLIN)
    starts = sorted({row.time for row in result.rows if row.time is not None})
    assert all(moment.weekday() == 0 and moment.hour == 0 for moment in starts)
    assert [moment.isoformat() for moment in starts] == [
        "2025-03-17T00:00:00+01:00",
        "2025-03-24T00:00:00+01:00",
        "2025-03-31T00:00:00+02:00",
        "2025-04-07T00:00:00+02:00",
    ]


@pytest.mark.parametrize("granularity", ["quarter", "year"])
async def test_quarters_and_years_in_a_half_hour_zone(
    service: SqlAnalyticsService, store: Store, granularity: str
) -> None:
    result = await service.query(
        AnalyticsQuery(
            measures=("new_customers",), granularity=granularity, timezone="Asia/Kolkata"
        )
    )
    customers = store.rows.customers.values()
    groups = grouped(customers, lambda c: (bucket(c.signed_up_at, granularity, KOLKATA),))
    assert by_key(result) == {key: {"new_customers": len(rows)} for key, rows in groups.items()}
    assert_offsets(result, KOLKATA)
    assert totals(result) == {"new_customers": len(store.rows.customers)}


async def test_measures_of_several_sources_merge_on_the_dimensions(
    service: SqlAnalyticsService, store: Store
) -> None:
    start, end = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 8, 1, tzinfo=UTC)
    result = await service.query(
        AnalyticsQuery(
            measures=("revenue", "sessions", "conversion_rate", "new_customers"),
            dimensions=("region",),
            granularity="month",
            start=start,
            end=end,
        )
    )
    customers = store.rows.customers
    utc = ZoneInfo("UTC")

    def region(customer_id: int | None) -> str | None:
        return customers[customer_id].region if customer_id is not None else None

    orders = [o for o in store.rows.orders.values() if within(o.placed_at, start, end)]
    events = [e for e in store.rows.events if within(e.occurred_at, start, end)]
    signed = [c for c in customers.values() if within(c.signed_up_at, start, end)]
    order_groups = grouped(
        orders, lambda o: (bucket(o.placed_at, "month", utc), region(o.customer_id))
    )
    event_groups = grouped(
        events, lambda e: (bucket(e.occurred_at, "month", utc), region(e.customer_id))
    )
    customer_groups = grouped(signed, lambda c: (bucket(c.signed_up_at, "month", utc), c.region))
    keys = order_groups.keys() | event_groups.keys() | customer_groups.keys()
    expected = {
        key: {
            "revenue": revenue(order_groups.get(key, [])),
            "sessions": sessions(event_groups.get(key, [])),
            "conversion_rate": close(conversion_rate(event_groups.get(key, []))),
            "new_customers": len(customer_groups.get(key, [])),
        }
        for key in keys
    }
    assert by_key(result) == expected
    # Anonymous visitors have no region: their row has sessions and no revenue.
    anonymous = by_key(result)[(datetime(2025, 6, 1, tzinfo=UTC), None)]
    assert anonymous["revenue"] == 0
    assert (anonymous["sessions"] or 0) > 0
    # Totals are computed over the whole range, not summed from the rows' ratios.
    assert totals(result) == {
        "revenue": revenue(orders),
        "sessions": sessions(events),
        "conversion_rate": close(conversion_rate(events)),
        "new_customers": len(signed),
    }


async def test_dimension_filters(service: SqlAnalyticsService, store: Store) -> None:
    signed_from = datetime(2025, 6, 1, tzinfo=UTC)
    result = await service.query(
        AnalyticsQuery(
            measures=("order_count", "revenue"),
            dimensions=("sales_channel", "customer_tier"),
            filters=(
                AnalyticsFilter("sales_channel", "not_equals", ("marketplace",)),
                AnalyticsFilter("customer_tier", "in", ("gold", "platinum")),
                AnalyticsFilter("region", "not_in", ("europe", "asia_pacific")),
                AnalyticsFilter("signed_up_at", "gte", (signed_from,)),
            ),
        )
    )
    customers = store.rows.customers
    kept = [
        o
        for o in store.rows.orders.values()
        if o.channel != "marketplace"
        and customers[o.customer_id].tier in ("gold", "platinum")
        and customers[o.customer_id].region not in ("europe", "asia_pacific")
        and customers[o.customer_id].signed_up_at >= signed_from
    ]
    groups = grouped(kept, lambda o: (None, o.channel, customers[o.customer_id].tier))
    assert by_key(result) == {
        key: {"order_count": len(rows), "revenue": revenue(rows)} for key, rows in groups.items()
    }
    assert totals(result) == {"order_count": len(kept), "revenue": revenue(kept)}


async def test_not_equals_keeps_rows_whose_dimension_is_null(
    service: SqlAnalyticsService, store: Store
) -> None:
    result = await service.query(
        AnalyticsQuery(
            measures=("sessions",),
            filters=(AnalyticsFilter("region", "not_equals", ("europe",)),),
        )
    )
    customers = store.rows.customers
    kept = [
        e
        for e in store.rows.events
        if e.customer_id is None or customers[e.customer_id].region != "europe"
    ]
    assert totals(result) == {"sessions": sessions(kept)}
    equals = await service.query(
        AnalyticsQuery(
            measures=("page_views",),
            filters=(AnalyticsFilter("event_type", "equals", ("page_view",)),),
        )
    )
    assert totals(equals) == {
        "page_views": sum(1 for e in store.rows.events if e.type == "page_view")
    }


async def test_time_filters_read_naive_times_in_the_query_zone(
    service: SqlAnalyticsService, store: Store
) -> None:
    low, high = datetime(2025, 10, 26, 1, 30), datetime(2025, 10, 26, 4)
    result = await service.query(
        AnalyticsQuery(
            measures=("page_views",),
            timezone="Europe/Berlin",
            filters=(AnalyticsFilter("occurred_at", "between", (low, high)),),
        )
    )
    # 01:30 fell twice that night; the earlier one is meant. between includes both ends.
    start, end = low.replace(tzinfo=BERLIN, fold=0), high.replace(tzinfo=BERLIN)
    assert start.utcoffset() == timedelta(hours=2)
    expected = sum(
        1 for e in store.rows.events if e.type == "page_view" and start <= e.occurred_at <= end
    )
    assert expected > 0
    assert totals(result) == {"page_views": expected}


async def test_measure_filters_keep_groups_and_totals_cover_only_them(
    service: SqlAnalyticsService, store: Store
) -> None:
    result = await service.query(
        AnalyticsQuery(
            measures=("revenue", "active_customers"),
            dimensions=("country",),
            filters=(
                AnalyticsFilter("revenue", "gt", (50_000.0,)),
                AnalyticsFilter("average_order_value", "between", (100.0, 1_000.0)),
            ),
        )
    )
    customers = store.rows.customers
    groups = grouped(store.rows.orders.values(), lambda o: (None, customers[o.customer_id].country))
    kept = {
        key: rows
        for key, rows in groups.items()
        if revenue(rows) > 50_000 and 100 <= (average_order_value(rows) or 0) <= 1_000
    }
    assert 0 < len(kept) < len(groups), "the filter should keep some countries, not all"
    assert by_key(result) == {
        key: {
            "revenue": revenue(rows),
            "active_customers": len({o.customer_id for o in rows if o.status in BILLABLE}),
        }
        for key, rows in kept.items()
    }
    kept_orders = [order for rows in kept.values() for order in rows]
    assert totals(result) == {
        "revenue": revenue(kept_orders),
        "active_customers": len({o.customer_id for o in kept_orders if o.status in BILLABLE}),
    }


async def test_order_by_a_measure_with_a_limit(service: SqlAnalyticsService, store: Store) -> None:
    result = await service.query(
        AnalyticsQuery(
            measures=("revenue",),
            dimensions=("country",),
            order_by=(AnalyticsOrder("average_order_value", descending=True),),
            limit=3,
        )
    )
    customers = store.rows.customers
    groups = grouped(store.rows.orders.values(), lambda o: (customers[o.customer_id].country,))
    ranked = sorted(groups, key=lambda key: average_order_value(groups[key]) or 0, reverse=True)
    assert [row.dimensions[0].value for row in result.rows] == [key[0] for key in ranked[:3]]
    assert [row.measures[0].value for row in result.rows] == [
        revenue(groups[key]) for key in ranked[:3]
    ]
    assert result.truncated
    # Totals ignore the limit.
    assert totals(result) == {"revenue": revenue(store.rows.orders.values())}


async def test_order_by_a_dimension_and_by_time(service: SqlAnalyticsService, store: Store) -> None:
    result = await service.query(
        AnalyticsQuery(
            measures=("order_count",),
            dimensions=("acquisition_channel",),
            granularity="quarter",
            order_by=(
                AnalyticsOrder("acquisition_channel", descending=True),
                AnalyticsOrder("time", descending=True),
            ),
        )
    )
    customers = store.rows.customers
    utc = ZoneInfo("UTC")
    groups = grouped(
        store.rows.orders.values(),
        lambda o: (
            customers[o.customer_id].acquisition_channel,
            bucket(o.placed_at, "quarter", utc),
        ),
    )
    ordered = sorted(groups, key=lambda key: (str(key[0]), key[1]), reverse=True)
    assert [(row.dimensions[0].value, row.time, row.measures[0].value) for row in result.rows] == [
        (key[0], key[1], len(groups[key])) for key in ordered
    ]
    assert not result.truncated


async def test_a_named_time_dimension_buckets_every_source_by_it(
    service: SqlAnalyticsService, store: Store
) -> None:
    # Cohorts: revenue by the month in which the customers signed up.
    result = await service.query(
        AnalyticsQuery(
            measures=("revenue", "new_customers"),
            granularity="month",
            time_dimension="signed_up_at",
            start=datetime(2025, 1, 1, tzinfo=UTC),
            end=datetime(2025, 7, 1, tzinfo=UTC),
        )
    )
    customers = store.rows.customers
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    utc = ZoneInfo("UTC")
    cohort = {c.id for c in customers.values() if within(c.signed_up_at, start, end)}
    orders = grouped(
        (o for o in store.rows.orders.values() if o.customer_id in cohort),
        lambda o: (bucket(customers[o.customer_id].signed_up_at, "month", utc),),
    )
    signed = grouped(
        (customers[customer_id] for customer_id in cohort),
        lambda c: (bucket(c.signed_up_at, "month", utc),),
    )
    assert by_key(result) == {
        key: {"revenue": revenue(orders.get(key, [])), "new_customers": len(rows)}
        for key, rows in signed.items()
    }


async def test_one_statement_for_the_rows_and_one_for_the_totals(
    service: SqlAnalyticsService, engine: AsyncEngine
) -> None:
    query = AnalyticsQuery(
        measures=("revenue", "units_sold", "sessions", "conversion_rate", "new_customers"),
        dimensions=("region",),
        granularity="week",
        timezone="Europe/Berlin",
        filters=(AnalyticsFilter("revenue", "gte", (0.0,)),),
    )
    with counting_statements(engine) as log:
        await service.query(query)
    assert len(log) == 2


# --- Mistakes in a query -----------------------------------------------------------------

BAD_QUERIES: dict[str, tuple[AnalyticsQuery, tuple[str, ...]]] = {
    "unknown measure": (
        AnalyticsQuery(measures=("revenu",)),
        ("Unknown measure 'revenu'", "revenue, order_count"),
    ),
    "no measure": (AnalyticsQuery(measures=()), ("at least one measure", "revenue")),
    "unknown dimension": (
        AnalyticsQuery(measures=("revenue",), dimensions=("colour",)),
        ("Unknown dimension 'colour'", "region, country"),
    ),
    "time dimension grouped": (
        AnalyticsQuery(measures=("revenue",), dimensions=("placed_at",)),
        ("Unknown dimension 'placed_at'", "region"),
    ),
    "unreachable dimension": (
        AnalyticsQuery(measures=("revenue", "sessions"), dimensions=("sales_channel",)),
        ("'sales_channel' is not reachable from source events", "measure sessions", "region"),
    ),
    "unreachable filter": (
        AnalyticsQuery(
            measures=("sessions",),
            filters=(AnalyticsFilter("product_category", "equals", ("books",)),),
        ),
        ("'product_category' is not reachable from source events",),
    ),
    "unknown granularity": (
        AnalyticsQuery(measures=("revenue",), granularity="fortnight"),
        ("Unknown granularity 'fortnight'", "hour, day, week, month, quarter, year"),
    ),
    "unknown time zone": (
        AnalyticsQuery(measures=("revenue",), timezone="Europe/Berln"),
        ("Unknown time zone 'Europe/Berln'", "Europe/Berlin"),
    ),
    "unknown time dimension": (
        AnalyticsQuery(measures=("revenue",), granularity="day", time_dimension="region"),
        ("Unknown time dimension 'region'", "placed_at, occurred_at, signed_up_at"),
    ),
    "limit too large": (
        AnalyticsQuery(measures=("revenue",), limit=MAXIMUM_LIMIT + 1),
        (f"between 1 and {MAXIMUM_LIMIT}",),
    ),
    "unknown filter member": (
        AnalyticsQuery(
            measures=("revenue",), filters=(AnalyticsFilter("colour", "equals", ("red",)),)
        ),
        ("Unknown member 'colour'", "revenue", "region"),
    ),
    "unknown operator": (
        AnalyticsQuery(
            measures=("revenue",), filters=(AnalyticsFilter("region", "like", ("e%",)),)
        ),
        ("Unknown filter operator 'like'", "equals, not_equals, in"),
    ),
    "ordering a string": (
        AnalyticsQuery(measures=("revenue",), filters=(AnalyticsFilter("region", "gt", ("e",)),)),
        ("string dimension takes equals, not_equals, in, not_in",),
    ),
    "number for a string": (
        AnalyticsQuery(
            measures=("revenue",), filters=(AnalyticsFilter("region", "equals", (1.0,)),)
        ),
        ("takes strings",),
    ),
    "between needs two": (
        AnalyticsQuery(
            measures=("revenue",), filters=(AnalyticsFilter("revenue", "between", (1.0,)),)
        ),
        ("between takes two values",),
    ),
    "order by an ungrouped dimension": (
        AnalyticsQuery(measures=("revenue",), order_by=(AnalyticsOrder("region"),)),
        ("Cannot order by 'region'",),
    ),
    "order by time without buckets": (
        AnalyticsQuery(measures=("revenue",), order_by=(AnalyticsOrder("time"),)),
        ("Cannot order by 'time'",),
    ),
    "date out of range": (
        AnalyticsQuery(measures=("revenue",), timezone="Asia/Tokyo", start=datetime(1, 1, 1)),
        ("0001-01-01T00:00:00 is out of range in Asia/Tokyo",),
    ),
    "too many values": (
        AnalyticsQuery(
            measures=("revenue",),
            filters=(AnalyticsFilter("country", "in", tuple(f"C{n}" for n in range(1001))),),
        ),
        ("takes 1 to 1000 values",),
    ),
    "empty range": (
        AnalyticsQuery(measures=("revenue",), start=datetime(2025, 2, 1), end=datetime(2025, 1, 1)),
        ("'from' must come before 'to'",),
    ),
}


@pytest.mark.parametrize(("query", "fragments"), BAD_QUERIES.values(), ids=BAD_QUERIES)
async def test_mistakes_are_bad_user_input_naming_the_choices(
    service: SqlAnalyticsService,
    engine: AsyncEngine,
    query: AnalyticsQuery,
    fragments: tuple[str, ...],
) -> None:
    with counting_statements(engine) as log, pytest.raises(BadUserInputError) as raised:
        await service.query(query)
    assert raised.value.code is ErrorCode.BAD_USER_INPUT
    assert raised.value.domain == "analytics"
    for fragment in fragments:
        assert fragment in raised.value.message
    assert len(log) == 0, "a bad query never reaches the store"


# --- Both dialects -----------------------------------------------------------------------

SAME_ON_BOTH = [
    AnalyticsQuery(
        measures=("revenue", "average_order_value", "sessions", "conversion_rate", "units_sold"),
        dimensions=("region",),
        granularity="week",
        timezone="America/New_York",
        start=datetime(2025, 10, 1),
        end=datetime(2025, 12, 1),
    ),
    AnalyticsQuery(
        measures=("sessions", "page_views"),
        dimensions=("event_type",),
        granularity="hour",
        timezone="Europe/Berlin",
        start=datetime(2025, 10, 25, 22),
        end=datetime(2025, 10, 26, 6),
    ),
    AnalyticsQuery(
        measures=("average_unit_price", "units_sold"),
        dimensions=("product_category", "customer_tier"),
        granularity="month",
        timezone="Australia/Lord_Howe",
        filters=(AnalyticsFilter("units_sold", "gte", (10.0,)),),
        order_by=(AnalyticsOrder("average_unit_price", descending=True),),
        limit=25,
    ),
    AnalyticsQuery(
        measures=("new_customers", "revenue"),
        dimensions=("acquisition_channel",),
        granularity="day",
        timezone="Asia/Kathmandu",
    ),
]


@pytest.mark.postgres
async def test_sqlite_and_postgresql_give_identical_results(
    sqlite_store_url: str, postgres_store_url: str
) -> None:
    results: dict[str, list[AnalyticsResult]] = {}
    for name, url in (("sqlite", sqlite_store_url), ("postgres", postgres_store_url)):
        engine = create_engine(Settings(database_url=url).store)
        try:
            service = SqlAnalyticsService(engine, load_catalog())
            results[name] = [await service.query(query) for query in SAME_ON_BOTH]
        finally:
            await engine.dispose()
    for on_sqlite, on_postgres in zip(results["sqlite"], results["postgres"], strict=True):
        assert on_sqlite.rows, "the comparison needs rows"
        # Exact equality, floats included: the same rows, in the same order.
        assert canonical(on_sqlite) == canonical(on_postgres)


def canonical(result: AnalyticsResult) -> list[Any]:
    # isoformat shows the offset, which datetime equality within one zone ignores.
    return [
        [row.time.isoformat() if row.time else None, row.dimensions, row.measures]
        for row in result.rows
    ] + [result.totals, result.truncated]
