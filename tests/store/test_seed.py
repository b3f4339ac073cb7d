"""The demo seed: deterministic, idempotent, the same on both dialects, and coherent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import astuple, dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from dataintel.store.seed import (
    LEDGER_BOOKING_TOLERANCE,
    ROLE_DESCRIPTIONS,
    SEED_DATA_VERSION,
    STOPPED_EVENTS_CHANNEL,
    STOPPED_EVENTS_GAP,
    WINDOW_END,
    WINDOW_START,
    SeedSummary,
    is_seeded,
    seed,
)
from tests.plugins.store import SeededTemplate, sqlite_url, table_digests

REPOSITORY = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def engine_on(url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=url).store)
    try:
        yield engine
    finally:
        await engine.dispose()


async def scalar(engine: AsyncEngine, statement: sa.Select[Any]) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(statement)).scalar_one()


def count(table: sa.FromClause, *conditions: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(sa.func.count()).select_from(table).where(*conditions)


@dataclass(frozen=True, slots=True)
class Discrepancies:
    orders_missing_from_ledger: int
    ledger_amount_mismatches: int
    ledger_booked_at_outliers: int
    ledger_entries_without_order: int

    @classmethod
    def of(cls, summary: SeedSummary) -> Discrepancies:
        return cls(
            summary.orders_missing_from_ledger,
            summary.ledger_amount_mismatches,
            summary.ledger_booked_at_outliers,
            summary.ledger_entries_without_order,
        )


async def discrepancies_found(engine: AsyncEngine) -> Discrepancies:
    """The ledger's discrepancies as a reconciliation would find them, by SQL."""
    orders, ledger = tables.orders, tables.ledger_entries
    has_entry = sa.select(ledger.c.id).where(ledger.c.order_id == orders.c.id).exists()
    has_order = sa.select(orders.c.id).where(orders.c.id == ledger.c.order_id).exists()
    matched = ledger.join(orders, ledger.c.order_id == orders.c.id)
    moments = sa.select(orders.c.placed_at, ledger.c.booked_at).select_from(matched)
    async with engine.connect() as connection:
        pairs = (await connection.execute(moments)).all()
    return Discrepancies(
        orders_missing_from_ledger=await scalar(
            engine, count(orders, orders.c.status != "cancelled", ~has_entry)
        ),
        ledger_amount_mismatches=await scalar(
            engine, count(matched, ledger.c.amount_cents != orders.c.total_cents)
        ),
        ledger_booked_at_outliers=sum(
            abs(booked - placed) > LEDGER_BOOKING_TOLERANCE for placed, booked in pairs
        ),
        ledger_entries_without_order=await scalar(engine, count(ledger, ~has_order)),
    )


async def test_seeding_again_replaces_only_the_demo_rows(store_engine: AsyncEngine) -> None:
    assert not await is_seeded(store_engine)
    first_summary = await seed(store_engine)
    first = await table_digests(store_engine, tables.DEMO_TABLES)
    assert await is_seeded(store_engine)
    async with store_engine.begin() as connection:
        await connection.execute(
            sa.insert(tables.users).values(
                email="ops@example.com",
                display_name="Ops",
                is_active=True,
                created_at=datetime(2026, 7, 1, tzinfo=UTC),
            )
        )
        await connection.execute(sa.insert(tables.roles).values(name="auditor", description="A"))
        await connection.execute(
            sa.update(tables.roles).where(tables.roles.c.name == "viewer").values(description="?")
        )

    second_summary = await seed(store_engine)

    assert second_summary == first_summary
    assert await table_digests(store_engine, tables.DEMO_TABLES) == first
    async with store_engine.connect() as connection:
        roles: dict[str, str] = dict((await connection.execute(sa.select(tables.roles))).all())
        users = (await connection.execute(sa.select(tables.users.c.email))).scalars().all()
    assert roles == {**ROLE_DESCRIPTIONS, "auditor": "A"}
    assert users == ["ops@example.com"]


@pytest.mark.postgres
async def test_postgresql_holds_the_same_rows_as_sqlite(
    fresh_postgres_url: str, seeded_sqlite: SeededTemplate
) -> None:
    async with engine_on(fresh_postgres_url) as engine:
        await upgrade(engine)
        summary = await seed(engine)
        postgresql_digests = await table_digests(engine)
        found = await discrepancies_found(engine)
        # Seeded ids are explicit: PostgreSQL's sequences must have been moved past them.
        async with engine.connect() as connection:
            next_product = await connection.execute(
                sa.insert(tables.products)
                .values(sku="NEW-1", name="New", category="books", price_cents=100)
                .returning(tables.products.c.id)
            )
            assert next_product.scalar_one() == summary.products + 1
            # The planner has statistics for the tables loaded (no wait for autovacuum).
            analyzed = await connection.execute(
                sa.text("SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL")
            )
            assert {table.name for table in tables.DEMO_TABLES} <= set(analyzed.scalars())
    async with engine_on(sqlite_url(seeded_sqlite.path)) as engine:
        sqlite_digests = await table_digests(engine)
    assert postgresql_digests == sqlite_digests
    assert summary == seeded_sqlite.summary
    assert found == Discrepancies.of(summary)


def stored_digests(path: Path) -> dict[str, tuple[int, str]]:
    """Per demo table, its row count and a hash of its rows as SQLite keeps them, in key order.

    The stored values themselves (a moment's text, not the datetime read back from it): a
    seed that wrote other text for the same moment would change what SQL compares.
    """
    digests: dict[str, tuple[int, str]] = {}
    with closing(sqlite3.connect(path)) as database:
        for table in tables.DEMO_TABLES:
            key = ", ".join(column.name for column in table.primary_key.columns)
            digest, rows = hashlib.sha256(), 0
            for row in database.execute(f"SELECT * FROM {table.name} ORDER BY {key}"):
                digest.update(repr(row).encode())
                rows += 1
            digests[table.name] = (rows, digest.hexdigest())
    return digests


FROZEN_SCALE_ONE_DIGESTS = {
    1: {
        "customers": (1000, "d9f691a17039a2d03f73bd1fdb863f513c9ba60fbcfac6724190ac3d713fa45c"),
        "products": (200, "0cb3ac712f103114a8352fc0f9369931c185e9c763062762a6378fa906224e61"),
        "orders": (10000, "7e91f72e9eba2a178f8cffd3605c3818625715e0a7145c0122720b7e9d1fff22"),
        "order_items": (24255, "949eef9a9824b57b4f3ec7b07ebb9306c3764f627debad5f13fb9dd59942c2df"),
        "events": (50777, "e50d4796d5974c06b8b654c4f707420d6e38e9a290bf4121e81b1530e0351748"),
        "ledger_entries": (
            9476,
            "f2b5711fe3fe814a35c0e5b6f60b193c2521e4f2583f64f924ae98527820f27f",
        ),
        "feature_values": (0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    },
}
"""The stored rows of scale 1, per SEED_DATA_VERSION: rows that change need a new version."""


def test_scale_one_holds_the_rows_of_its_data_version(seeded_sqlite: SeededTemplate) -> None:
    # Bench stores are kept by data version (bench/seeded_stores.py): a change to the rows
    # that kept the version would let benches measure stale stores. A faster seed must draw
    # the very same rows; a change meant to alter them bumps SEED_DATA_VERSION and adds its
    # digests here.
    assert stored_digests(seeded_sqlite.path) == FROZEN_SCALE_ONE_DIGESTS[SEED_DATA_VERSION]


CHILD_SCRIPT = """
import asyncio, json, sys
from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from dataintel.store.seed import seed
from tests.plugins.store import table_digests

async def main() -> None:
    engine = create_engine(Settings(database_url=sys.argv[1]).store)
    await upgrade(engine)
    await seed(engine)
    print(json.dumps(await table_digests(engine)))
    await engine.dispose()

asyncio.run(main())
"""


def test_every_process_draws_the_same_rows(seeded_sqlite_url: str, tmp_path: Path) -> None:
    """A new process with another string hash seed seeds the very rows of the template."""
    completed = subprocess.run(
        [sys.executable, "-c", CHILD_SCRIPT, sqlite_url(tmp_path / "other.db")],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )

    async def template_digests() -> dict[str, str]:
        async with engine_on(seeded_sqlite_url) as engine:
            return await table_digests(engine)

    assert json.loads(completed.stdout) == asyncio.run(template_digests())


async def test_the_summary_counts_the_rows_and_the_discrepancies(
    seeded_sqlite_url: str, seeded_sqlite: SeededTemplate
) -> None:
    summary = seeded_sqlite.summary
    async with engine_on(seeded_sqlite_url) as engine:
        counted = {
            table.name: await scalar(engine, count(table))
            for table in (*tables.DEMO_TABLES, tables.roles)
        }
        found = await discrepancies_found(engine)
    assert counted == {
        "customers": summary.customers,
        "products": summary.products,
        "orders": summary.orders,
        "order_items": summary.order_items,
        "events": summary.events,
        "ledger_entries": summary.ledger_entries,
        "feature_values": 0,
        "roles": summary.roles,
    }
    assert found == Discrepancies.of(summary)
    assert all(astuple(found)), "every kind of discrepancy is present"


def test_scale_one_has_the_documented_size(seeded_sqlite: SeededTemplate) -> None:
    summary = seeded_sqlite.summary
    assert (summary.customers, summary.products, summary.orders) == (1000, 200, 10_000)
    assert 22_000 <= summary.order_items <= 28_000
    assert 45_000 <= summary.events <= 55_000
    assert 0.9 * summary.orders <= summary.ledger_entries <= summary.orders


async def test_scale_two_doubles_the_business(
    tmp_path: Path, seeded_sqlite: SeededTemplate
) -> None:
    one = seeded_sqlite.summary
    async with engine_on(sqlite_url(tmp_path / "scale2.db")) as engine:
        await upgrade(engine)
        two = await seed(engine, scale=2)
        orders_stored = await scalar(engine, count(tables.orders))
    assert two.scale == 2
    assert orders_stored == two.orders == 2 * one.orders
    assert two.customers == 2 * one.customers
    assert 1.9 <= two.events / one.events <= 2.1
    assert 1.9 <= two.order_items / one.order_items <= 2.1
    assert one.products < two.products < 2 * one.products
    assert astuple(Discrepancies.of(two)) == tuple(2 * n for n in astuple(Discrepancies.of(one)))


async def test_the_demo_business_is_coherent(seeded_sqlite: SeededTemplate) -> None:
    seeded_sqlite_url, summary = sqlite_url(seeded_sqlite.path), seeded_sqlite.summary
    customers, orders, items = tables.customers, tables.orders, tables.order_items
    events, ledger = tables.events, tables.ledger_entries
    item_totals = (
        sa.select(items.c.order_id, sa.func.sum(items.c.quantity * items.c.unit_price_cents))
        .group_by(items.c.order_id)
        .subquery()
    )
    totalled = orders.outerjoin(item_totals, item_totals.c.order_id == orders.c.id)
    purchase_of_order = (
        sa.select(events.c.id)
        .where(
            events.c.type == "purchase",
            events.c.customer_id == orders.c.customer_id,
            events.c.occurred_at == orders.c.placed_at,
            events.c.channel == orders.c.channel,
        )
        .exists()
    )
    sign_up_of_customer = (
        sa.select(events.c.id)
        .where(
            events.c.type == "sign_up",
            events.c.customer_id == customers.c.id,
            events.c.occurred_at == customers.c.signed_up_at,
        )
        .exists()
    )
    buyers = orders.join(customers, customers.c.id == orders.c.customer_id)
    ledger_orders = ledger.join(orders, orders.c.id == ledger.c.order_id)
    sessions = sa.func.count(sa.distinct(events.c.session_id))
    async with engine_on(seeded_sqlite_url) as engine:
        total_orders = await scalar(engine, count(orders))
        total_customers = await scalar(engine, count(customers))
        mistotalled = await scalar(
            engine, count(totalled, sa.func.coalesce(item_totals.c[1], -1) != orders.c.total_cents)
        )
        purchases = await scalar(engine, count(events, events.c.type == "purchase"))
        stopped_purchases = await scalar(
            engine,
            count(
                orders,
                orders.c.channel == STOPPED_EVENTS_CHANNEL,
                orders.c.placed_at > WINDOW_END - STOPPED_EVENTS_GAP,
            ),
        )
        orders_with_purchase = await scalar(engine, count(orders, purchase_of_order))
        sign_ups = await scalar(engine, count(events, events.c.type == "sign_up"))
        customers_with_sign_up = await scalar(engine, count(customers, sign_up_of_customer))
        orders_before_sign_up = await scalar(
            engine, count(buyers, orders.c.placed_at < customers.c.signed_up_at)
        )
        cancelled_in_ledger = await scalar(
            engine, count(ledger_orders, orders.c.status == "cancelled")
        )
        reversed_not_refunded = await scalar(
            engine,
            count(
                ledger_orders, (ledger.c.status == "reversed") != (orders.c.status == "refunded")
            ),
        )
        anonymous_events = await scalar(engine, count(events, events.c.customer_id.is_(None)))
        all_sessions = await scalar(engine, sa.select(sessions))
        converting_sessions = await scalar(
            engine, sa.select(sessions).where(events.c.type == "purchase")
        )
        async with engine.connect() as connection:
            kinds = {
                column.key: set((await connection.execute(sa.select(column).distinct())).scalars())
                for column in (customers.c.region, customers.c.tier, orders.c.status)
            }
            platform_users = (await connection.execute(count(tables.users))).scalar_one()
    # The seeded quality defects: negated totals, a channel's purchases missing at the end.
    assert mistotalled == summary.orders_total_out_of_range
    assert purchases == orders_with_purchase == total_orders - stopped_purchases
    assert 0 < stopped_purchases < summary.stopped_channel_events_missing
    assert sign_ups == customers_with_sign_up == total_customers
    assert orders_before_sign_up == 0
    assert cancelled_in_ledger == reversed_not_refunded == 0
    assert anonymous_events > 0
    assert 0 < converting_sessions < all_sessions
    assert kinds == {
        "region": set(tables.REGIONS),
        "tier": set(tables.TIERS),
        "status": set(tables.ORDER_STATUSES),
    }
    assert platform_users == 0


async def test_every_moment_lies_in_the_window(seeded_sqlite_url: str) -> None:
    columns = (
        tables.orders.c.placed_at,
        tables.events.c.occurred_at,
        tables.customers.c.signed_up_at,
    )
    async with engine_on(seeded_sqlite_url) as engine, engine.connect() as connection:
        for column in columns:
            earliest, latest = (
                await connection.execute(sa.select(sa.func.min(column), sa.func.max(column)))
            ).one()
            assert WINDOW_START <= earliest <= latest <= WINDOW_END, column.key
            assert earliest.tzinfo is UTC


async def written_counts(engine: AsyncEngine) -> dict[tuple[str, str], int]:
    counts = tables.row_change_counts
    async with engine.connect() as connection:
        found = await connection.execute(
            sa.select(counts.c.table_name, counts.c.period, counts.c.changes)
        )
        return {(table, period): changes for table, period, changes in found}


async def test_seeding_counts_its_writes_like_the_triggers(store_engine: AsyncEngine) -> None:
    # On SQLite the seed sets the row triggers aside and writes their counts itself; on
    # PostgreSQL the triggers count the COPY. Either way: the rows per table and UTC day.
    await seed(store_engine)
    orders, items = tables.orders, tables.order_items
    day: sa.ColumnElement[str] = sa.func.strftime("%Y-%m-%d", orders.c.placed_at, type_=sa.String)
    if store_engine.dialect.name == "postgresql":
        day = sa.func.to_char(
            sa.func.timezone("UTC", orders.c.placed_at), "YYYY-MM-DD", type_=sa.String
        )
    async with store_engine.connect() as connection:
        by_day: dict[str, int] = dict(
            (await connection.execute(sa.select(day, sa.func.count()).group_by(day))).all()
        )
        items_by_day: dict[str, int] = dict(
            (
                await connection.execute(
                    sa.select(day, sa.func.count())
                    .select_from(items.join(orders, items.c.order_id == orders.c.id))
                    .group_by(day)
                )
            ).all()
        )
        customers = (await connection.execute(count(tables.customers))).scalar_one()
    counted = await written_counts(store_engine)
    assert {p: n for (t, p), n in counted.items() if t == "orders"} == by_day
    assert {p: n for (t, p), n in counted.items() if t == "order_items"} == items_by_day
    assert counted[("customers", "*")] == customers

    # Seeding again deletes every row: every counter moves, and the triggers count again.
    await seed(store_engine)
    again = await written_counts(store_engine)
    assert all(again[key] > changes for key, changes in counted.items())
    async with store_engine.begin() as connection:
        await connection.execute(
            sa.update(orders).where(orders.c.id == 1).values(total_cents=orders.c.total_cents + 1)
        )
    assert sum((await written_counts(store_engine)).values()) == sum(again.values()) + 2


async def test_the_triggers_count_under_the_day_the_seed_counts_under(
    store_engine: AsyncEngine,
) -> None:
    # The seed keys its own counts with tables.counter_period; the triggers must key theirs
    # alike, to the UTC day, on both sides of a UTC midnight given in another zone's time.
    await seed(store_engine)
    orders, items = tables.orders, tables.order_items
    berlin = timezone(timedelta(hours=1))
    before_midnight = datetime(2025, 3, 10, 0, 59, 59, 999_999, tzinfo=berlin)
    after_midnight = datetime(2025, 3, 10, 1, 0, tzinfo=berlin)
    later = datetime(2025, 3, 14, 12, tzinfo=UTC)
    counted = await written_counts(store_engine)
    async with store_engine.begin() as connection:
        order_ids = [
            (
                await connection.execute(
                    sa.insert(orders)
                    .values(
                        customer_id=1,
                        status="paid",
                        channel="web",
                        placed_at=moment,
                        total_cents=1_000,
                        currency="USD",
                    )
                    .returning(orders.c.id)
                )
            ).scalar_one()
            for moment in (before_midnight, after_midnight)
        ]
        await connection.execute(
            sa.insert(items).values(
                order_id=order_ids[0], product_id=1, quantity=1, unit_price_cents=1_000
            )
        )
    now = await written_counts(store_engine)
    first, second = tables.counter_period(before_midnight), tables.counter_period(after_midnight)
    assert (first, second) == ("2025-03-09", "2025-03-10")
    assert now[("orders", first)] == counted.get(("orders", first), 0) + 1
    assert now[("orders", second)] == counted.get(("orders", second), 0) + 1
    assert now[("order_items", first)] == counted.get(("order_items", first), 0) + 1

    # A re-timed row counts in the day it leaves and the day it lands in.
    async with store_engine.begin() as connection:
        await connection.execute(
            sa.update(orders).where(orders.c.id == order_ids[0]).values(placed_at=later)
        )
    moved = await written_counts(store_engine)
    assert moved[("orders", first)] == now[("orders", first)] + 1
    assert moved[("orders", "2025-03-14")] == now.get(("orders", "2025-03-14"), 0) + 1
    changed = {key for key in moved if moved[key] != now.get(key)}
    assert changed == {("orders", first), ("orders", "2025-03-14")}
