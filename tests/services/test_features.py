"""Feature views: materialized values against an independent computation, time, staleness."""

from __future__ import annotations

import asyncio
import math
import re
import shutil
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError
from dataintel.services.features import (
    FeatureCatalogError,
    FeatureScalar,
    FeatureStatus,
    SqlFeatureService,
    compile_formula,
    load_catalog,
)
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.seed import migrate_and_seed
from tests.plugins.statements import counting_statements
from tests.plugins.store import PostgresServer, sqlite_url

COUNTED = frozenset({"placed", "paid", "shipped", "delivered"})
MONTH = timedelta(days=30)
MATERIALIZED_AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PAST = datetime(2025, 9, 15, 12, 0, tzinfo=UTC)

Expected = dict[str, dict[str, FeatureScalar | None]]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded_store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A store seeded at scale 1, shared by this module's tests: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("seeded_sqlite_template")
        copy = tmp_path_factory.mktemp("features") / "store.db"
        shutil.copyfile(template, copy)
        yield sqlite_url(copy)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = asyncio.run(server.create_database())
    try:
        asyncio.run(migrate_and_seed(server.url(name)))
        yield server.url(name)
    finally:
        asyncio.run(server.drop_database(name))


@pytest.fixture
async def engine(seeded_store_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the seeded store with an empty feature table."""
    store = create_engine(Settings(database_url=seeded_store_url).store)
    async with store.begin() as connection:
        await connection.execute(sa.delete(tables.feature_values))
    yield store
    await store.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(MATERIALIZED_AT)


@pytest.fixture
def service(engine: AsyncEngine, clock: Clock) -> SqlFeatureService:
    return SqlFeatureService(engine, load_catalog(), clock)


# --- The independent computation, from raw rows, in plain Python -------------------------


@dataclass(frozen=True, slots=True)
class RawStore:
    customer_ids: list[int]
    product_ids: list[int]
    orders: list[Mapping[str, Any]]
    items: list[Mapping[str, Any]]
    categories: dict[int, str]
    events: list[Mapping[str, Any]]


async def read_raw(engine: AsyncEngine) -> RawStore:
    async with engine.connect() as connection:

        async def rows(table: sa.Table) -> list[Mapping[str, Any]]:
            return [dict(row._mapping) for row in await connection.execute(sa.select(table))]

        customers = await rows(tables.customers)
        products = await rows(tables.products)
        return RawStore(
            customer_ids=[row["id"] for row in customers],
            product_ids=[row["id"] for row in products],
            orders=await rows(tables.orders),
            items=await rows(tables.order_items),
            categories={row["id"]: row["category"] for row in products},
            events=await rows(tables.events),
        )


def in_window(moment: datetime, as_of: datetime, window: timedelta | None = None) -> bool:
    return moment <= as_of and (window is None or moment > as_of - window)


def expected_customers(raw: RawStore, as_of: datetime) -> Expected:
    orders_by_id = {order["id"]: order for order in raw.orders}
    counted: defaultdict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for order in raw.orders:
        if order["status"] in COUNTED and in_window(order["placed_at"], as_of):
            counted[order["customer_id"]].append(order)
    units: defaultdict[int, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in raw.items:
        order = orders_by_id[item["order_id"]]
        if order["status"] in COUNTED and in_window(order["placed_at"], as_of):
            units[order["customer_id"]][raw.categories[item["product_id"]]] += item["quantity"]
    sessions: defaultdict[int, set[str]] = defaultdict(set)
    for event in raw.events:
        if event["customer_id"] is not None and in_window(event["occurred_at"], as_of, MONTH):
            sessions[event["customer_id"]].add(event["session_id"])
    expected: Expected = {}
    for customer_id in raw.customer_ids:
        mine = counted[customer_id]
        totals = [order["total_cents"] for order in mine]
        recent = sum(1 for order in mine if in_window(order["placed_at"], as_of, MONTH))
        latest = max((order["placed_at"] for order in mine), default=None)
        days = None if latest is None else math.floor((as_of - latest).total_seconds() / 86400)
        by_category = units[customer_id]
        favorite = min(by_category, key=lambda c: (-by_category[c], c)) if by_category else None
        session_count = len(sessions[customer_id])
        recency = min(180 if days is None else days, 180) / 180
        churn = (
            0.6 * recency + 0.25 * max(0.0, 1 - session_count / 4) + 0.15 * max(0.0, 1 - recent / 2)
        )
        expected[str(customer_id)] = {
            "lifetime_value": sum(totals) / 100,
            "order_count": len(mine),
            "average_order_value": sum(totals) / len(totals) / 100 if totals else None,
            "favorite_category": favorite,
            "orders_last_30d": recent,
            "days_since_last_order": days,
            "sessions_last_30d": session_count,
            "active_last_30d": recent > 0 or session_count > 0,
            "churn_risk_score": churn,
        }
    return expected


def expected_products(raw: RawStore, as_of: datetime) -> Expected:
    orders_by_id = {order["id"]: order for order in raw.orders}
    units: defaultdict[int, int] = defaultdict(int)
    recent_cents: defaultdict[int, int] = defaultdict(int)
    lifetime_cents: defaultdict[int, int] = defaultdict(int)
    for item in raw.items:
        order = orders_by_id[item["order_id"]]
        if order["status"] not in COUNTED or not in_window(order["placed_at"], as_of):
            continue
        product_id, line = item["product_id"], item["quantity"] * item["unit_price_cents"]
        lifetime_cents[product_id] += line
        if in_window(order["placed_at"], as_of, MONTH):
            units[product_id] += item["quantity"]
            recent_cents[product_id] += line
    return {
        str(product_id): {
            "units_sold_last_30d": units[product_id],
            "revenue_last_30d": recent_cents[product_id] / 100,
            "lifetime_revenue": lifetime_cents[product_id] / 100,
        }
        for product_id in raw.product_ids
    }


async def served(service: SqlFeatureService, entity_type: str, ids: list[str]) -> Expected:
    found = await service.online(entity_type, ids, None)
    return {
        entity_id: {record.name: record.value for record in records}
        for entity_id, records in found.items()
    }


def assert_same(actual: Expected, expected: Expected) -> None:
    assert actual.keys() == expected.keys()
    for entity_id, features in expected.items():
        assert actual[entity_id].keys() == features.keys()
        for name, value in features.items():
            got = actual[entity_id][name]
            where = f"{name} of {entity_id}"
            if isinstance(value, float):
                assert isinstance(got, float), where
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), where
            else:
                assert type(got) is type(value), where
                assert got == value, where


# --- Materialization ---------------------------------------------------------------------


@pytest.mark.parametrize("explicit_as_of", [None, PAST], ids=["latest", "past"])
async def test_values_match_an_independent_computation(
    service: SqlFeatureService, engine: AsyncEngine, explicit_as_of: datetime | None
) -> None:
    raw = await read_raw(engine)
    summary = await service.materialize(explicit_as_of)
    latest = max(
        max(order["placed_at"] for order in raw.orders),
        max(event["occurred_at"] for event in raw.events),
    )
    as_of = explicit_as_of or latest
    assert summary.as_of == as_of
    customers = expected_customers(raw, as_of)
    products = expected_products(raw, as_of)
    assert_same(await served(service, "customer", list(customers)), customers)
    assert_same(await served(service, "product", list(products)), products)
    assert summary.rows_by_view == {
        "customer_value": 4 * len(customers),
        "customer_engagement": 5 * len(customers),
        "product_sales": 3 * len(products),
    }
    # The demo data must make the features say something, not be all zeros or nulls.
    assert sum(1 for values in customers.values() if values["orders_last_30d"]) > 10
    assert sum(1 for values in customers.values() if values["favorite_category"] is None) > 0
    scores = [float(values["churn_risk_score"] or 0) for values in customers.values()]
    assert all(0 <= score <= 1 for score in scores)
    assert min(scores) < 0.5 < max(scores)


async def test_every_value_carries_as_of_and_materialization_time(
    service: SqlFeatureService, engine: AsyncEngine
) -> None:
    await service.materialize(PAST)
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(tables.feature_values))).all()
    assert rows
    assert {row.event_timestamp for row in rows} == {PAST}
    assert {row.created_at for row in rows} == {MATERIALIZED_AT}
    strings = {row.feature_name for row in rows if row.value_text is not None}
    assert strings == {"favorite_category"}


async def test_materializing_twice_gives_the_same_rows(
    service: SqlFeatureService, engine: AsyncEngine, clock: Clock
) -> None:
    async def everything() -> list[tuple[Any, ...]]:
        async with engine.connect() as connection:
            statement = sa.select(tables.feature_values).order_by(
                *tables.feature_values.primary_key.columns
            )
            return [tuple(row) for row in await connection.execute(statement)]

    await service.materialize()
    first = await everything()
    await service.materialize()
    assert await everything() == first
    clock.now += timedelta(hours=5)
    await service.materialize()
    again = await everything()
    # Only the materialization time moves; values and the as-of timestamp stay.
    assert [row[:6] for row in again] == [row[:6] for row in first]
    assert {row[6] for row in again} == {clock.now}


async def test_values_of_vanished_entities_are_removed(
    service: SqlFeatureService, engine: AsyncEngine
) -> None:
    orphan = {
        "entity_type": "customer",
        "entity_id": "987654321",
        "feature_name": "order_count",
        "value_double": 3.0,
        "value_text": None,
        "event_timestamp": PAST,
        "created_at": PAST,
    }
    async with engine.begin() as connection:
        await connection.execute(sa.insert(tables.feature_values), [orphan])
    await service.materialize()
    found = await service.online("customer", ["987654321"], ["order_count"])
    assert found["987654321"][0].status is FeatureStatus.NOT_FOUND


async def test_materialize_runs_a_fixed_number_of_statements(
    service: SqlFeatureService, engine: AsyncEngine
) -> None:
    with counting_statements(engine) as log:
        await service.materialize()
    # The as_of lookup, then per view: its SELECT, the upserts (one executemany per 5000
    # values) and the clean-up; nothing per entity (there are 1000 customers).
    assert len(log) < 20


async def test_a_failed_materialization_writes_nothing(
    service: SqlFeatureService, engine: AsyncEngine
) -> None:
    def fail_at_product_cleanup(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any
    ) -> None:
        # The product view comes last: the customer views have been written by then.
        if statement.lstrip().upper().startswith("DELETE") and "product" in parameters:
            raise RuntimeError("the store went away")

    sa.event.listen(engine.sync_engine, "before_cursor_execute", fail_at_product_cleanup)
    try:
        with pytest.raises(RuntimeError, match="the store went away"):
            await service.materialize()
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", fail_at_product_cleanup)
    assert await service.has_values() is False


# --- Online reads ------------------------------------------------------------------------


async def test_many_entities_are_one_statement(
    service: SqlFeatureService, engine: AsyncEngine
) -> None:
    await service.materialize()
    ids = [str(number) for number in range(1, 301)]
    with counting_statements(engine) as log:
        found = await service.online("customer", ids, ["lifetime_value", "favorite_category"])
    assert len(log) == 1
    assert list(found) == ids
    assert [record.name for record in found["1"]] == ["lifetime_value", "favorite_category"]


async def test_missing_entities_are_not_found_and_stale(service: SqlFeatureService) -> None:
    await service.materialize()
    found = await service.online("customer", ["1", "999999", "not-a-number"], ["order_count"])
    present = found["1"][0]
    assert present.status is FeatureStatus.PRESENT
    assert present.stale is False
    assert isinstance(present.value, int)
    for entity_id in ("999999", "not-a-number"):
        missing = found[entity_id][0]
        assert missing.status is FeatureStatus.NOT_FOUND
        assert missing.stale is True
        assert (missing.value, missing.timestamp, missing.materialized_at) == (None, None, None)


async def test_nothing_materialized_yet_is_not_found(service: SqlFeatureService) -> None:
    assert await service.has_values() is False
    found = await service.online("product", ["1"], None)
    assert {record.status for record in found["1"]} == {FeatureStatus.NOT_FOUND}
    await service.materialize()
    assert await service.has_values() is True


async def test_null_values_are_fresh_but_marked(service: SqlFeatureService) -> None:
    await service.materialize()
    customers = await service.online("customer", [str(n) for n in range(1, 1001)], None)
    by_name = [{record.name: record for record in records} for records in customers.values()]
    without_orders = [values for values in by_name if values["order_count"].value == 0]
    assert without_orders, "the demo data has customers without orders"
    average = without_orders[0]["average_order_value"]
    assert (average.value, average.status, average.stale) == (
        None,
        FeatureStatus.NULL_VALUE,
        False,
    )
    assert without_orders[0]["lifetime_value"].status is FeatureStatus.PRESENT


async def test_staleness_follows_each_views_ttl(service: SqlFeatureService, clock: Clock) -> None:
    await service.materialize()
    names = ["lifetime_value", "churn_risk_score"]  # customer_value: 7d, engagement: 1d

    async def states() -> dict[str, tuple[bool, FeatureStatus]]:
        found = await service.online("customer", ["1"], names)
        return {record.name: (record.stale, record.status) for record in found["1"]}

    fresh, old = (False, FeatureStatus.PRESENT), (True, FeatureStatus.OUTSIDE_MAX_AGE)
    clock.now = MATERIALIZED_AT + timedelta(days=1)
    assert await states() == {"lifetime_value": fresh, "churn_risk_score": fresh}
    clock.now = MATERIALIZED_AT + timedelta(days=1, seconds=1)
    assert await states() == {"lifetime_value": fresh, "churn_risk_score": old}
    clock.now = MATERIALIZED_AT + timedelta(days=7, seconds=1)
    assert await states() == {"lifetime_value": old, "churn_risk_score": old}
    found = await service.online("customer", ["1"], ["lifetime_value"])
    assert found["1"][0].value is not None, "a stale value is still given"
    await service.materialize()
    assert await states() == {"lifetime_value": fresh, "churn_risk_score": fresh}


async def test_unknown_names_are_bad_user_input_naming_the_valid_ones(
    service: SqlFeatureService,
) -> None:
    with pytest.raises(BadUserInputError) as entity_error:
        await service.online("shop", ["1"], None)
    assert "customer, product" in entity_error.value.message
    assert entity_error.value.details["valid"] == ["customer", "product"]
    with pytest.raises(BadUserInputError) as feature_error:
        await service.online("customer", ["1"], ["lifetime_value", "shoe_size"])
    assert "'shoe_size'" in feature_error.value.message
    assert "churn_risk_score" in feature_error.value.message
    assert feature_error.value.details["unknown"] == ["shoe_size"]
    with pytest.raises(BadUserInputError):
        await service.online("product", ["1"], ["lifetime_value"])


# --- The catalog and its YAML ----------------------------------------------------------

EXTRA_VIEWS = """
views:
  - name: customer_value
    entity: customer
    ttl: 2h
    description: Replaced.
    features:
      - name: lifetime_value
        type: float
        description: Every order, even cancelled ones, in cents.
        aggregate: sum
        source: orders
        column: total_cents
  - name: customer_channels
    entity: customer
    ttl: 12h
    description: Where a customer buys.
    features:
      - name: orders_last_90d
        type: int
        description: Counted orders in 90 days.
        aggregate: count
        source: orders
        window: 90d
        where: {status: [placed, paid, shipped, delivered]}
      - name: mobile_orders_last_90d
        type: int
        description: Counted mobile orders in 90 days.
        aggregate: count
        source: orders
        window: 90d
        where: {channel: [mobile], status: [placed, paid, shipped, delivered]}
      - name: mobile_share_last_90d
        type: float
        description: Share of mobile orders.
        formula: mobile_orders_last_90d / orders_last_90d
"""


async def test_a_views_file_adds_and_replaces_views(
    engine: AsyncEngine, tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "views.yaml"
    path.write_text(EXTRA_VIEWS)
    catalog = load_catalog(path)
    assert [view.name for view in catalog.views] == [
        "customer_value",
        "customer_engagement",
        "product_sales",
        "customer_channels",
    ]
    assert catalog.view("customer_value").ttl == timedelta(hours=2)
    service = SqlFeatureService(engine, catalog, clock)
    summary = await service.materialize(PAST)
    raw = await read_raw(engine)
    shares: dict[str, float | None] = {}
    for customer_id in raw.customer_ids:
        recent = [
            order
            for order in raw.orders
            if order["customer_id"] == customer_id
            and order["status"] in COUNTED
            and in_window(order["placed_at"], PAST, timedelta(days=90))
        ]
        mobile = sum(1 for order in recent if order["channel"] == "mobile")
        shares[str(customer_id)] = mobile / len(recent) if recent else None
    found = await service.online("customer", list(shares), ["mobile_share_last_90d"])
    for entity_id, share in shares.items():
        record = found[entity_id][0]
        assert record.value == (pytest.approx(share) if share is not None else None)
    assert summary.rows_by_view["customer_channels"] == 3 * len(shares)
    everything = sum(
        order["total_cents"]
        for order in raw.orders
        if order["customer_id"] == 1 and order["placed_at"] <= PAST
    )
    value = (await service.online("customer", ["1"], ["lifetime_value"]))["1"][0].value
    assert value == pytest.approx(float(everything))


def write_views(path: Path, features: list[dict[str, Any]]) -> Path:
    view = {"name": "extra", "entity": "customer", "ttl": "1d", "description": "Extra."}
    path.write_text(yaml.safe_dump({"views": [{**view, "features": features}]}))
    return path


@pytest.mark.parametrize(
    ("feature", "message"),
    [
        ({"aggregate": "sum", "source": "shop", "column": "total_cents"}, "'shop' is not one of"),
        ({"aggregate": "sum", "source": "orders", "column": "colour"}, "'colour' is not in"),
        ({"aggregate": "sum", "source": "orders", "column": "status"}, "needs a numeric column"),
        ({"aggregate": "sum", "source": "orders"}, "needs a 'column'"),
        ({"aggregate": "count", "source": "orders", "window": "3 days"}, "positive duration"),
        ({"formula": "order_total + 1"}, "'order_total' is not a feature declared earlier"),
        ({"formula": "__import__('os')"}, "is not allowed in a formula"),
        ({"formula": "1 +"}, "does not parse"),
        ({}, "give either 'aggregate' or 'formula'"),
    ],
)
def test_a_bad_views_file_is_refused_with_a_reason(
    tmp_path: Path, feature: dict[str, Any], message: str
) -> None:
    features = [{"name": "x", "type": "float", "description": "X.", **feature}]
    with pytest.raises(FeatureCatalogError, match=re.escape(message)):
        load_catalog(write_views(tmp_path / "views.yaml", features))


def test_a_feature_name_is_unique_per_entity_type(tmp_path: Path) -> None:
    again = {"name": "order_count", "type": "int", "description": "Again."}
    features = [{**again, "aggregate": "count", "source": "orders"}]
    with pytest.raises(FeatureCatalogError, match="names must be unique per entity type"):
        load_catalog(write_views(tmp_path / "views.yaml", features))


def test_formulas_pass_nulls_through() -> None:
    share = compile_formula("a / b", ["a", "b"])
    assert share({"a": 1, "b": 4}) == 0.25
    assert share({"a": 1, "b": 0}) is None
    assert share({"a": None, "b": 4}) is None
    fallback = compile_formula("min(coalesce(a, 180), 180) / 180", ["a"])
    assert fallback({"a": None}) == 1
    assert fallback({"a": 45}) == 0.25
    either = compile_formula("a > 0 or not b", ["a", "b"])
    assert either({"a": 0, "b": False}) is True
    assert either({"a": 0, "b": True}) is False
