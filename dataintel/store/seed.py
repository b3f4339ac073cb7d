"""The deterministic demo data: an online shop's customers, products, orders, events, ledger.

It holds deliberate, counted flaws for reconciliation (ledger discrepancies) and for the
quality checks (blank countries, e-mails held twice, totals out of range, a channel whose
events stop early); the seed summary counts them.

The same scale gives the same rows on every run and on every dialect: every choice comes
from ``random.Random`` seeded with a constant, every moment from a fixed window (never the
clock), and every id is assigned here rather than by the database.

One module past the usual size on purpose: the rows are one generated world (orders need the
customers and products, events follow the orders, the ledger mirrors them, the defects are
counted edits of them) drawn from one set of seeded random streams and one time window, and
the summary counts what each part planted; read apart, the parts would hide those links.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dataintel.store import tables
from dataintel.store.bulk_load import (
    add_written_counts,
    insert_rows,
    mark_all_written,
    row_triggers_suspended,
)

WINDOW_START = datetime(2025, 1, 1, tzinfo=UTC)
"""No order or event happens before this moment."""
WINDOW_END = datetime(2026, 6, 30, 23, 59, tzinfo=UTC)
"""No order or event happens after this moment; the data set's "now"."""

LEDGER_BOOKING_TOLERANCE = timedelta(days=1)
"""A ledger entry booked further than this from its order's placed_at is a discrepancy."""
LEDGER_SMALL_AMOUNT_DIFFERENCE_CENTS = 9
"""A small (rounding-like) amount mismatch is off by at most this; a large one by a dollar+."""
ORPHAN_ORDER_ID_BASE = 900_000_000
"""Ledger entries without an order point at ids above this, which no order ever has."""
STOPPED_EVENTS_CHANNEL = "marketplace"
"""The channel whose events stop before the others' (a feed that broke down)."""
STOPPED_EVENTS_GAP = timedelta(days=3)
"""How long before WINDOW_END the stopped channel's events end."""

ROLE_DESCRIPTIONS: Mapping[str, str] = {
    "viewer": "Reads analytics, features, the catalog and the status of the service.",
    "analyst": "A viewer who also runs quality checks and reconciliations and exports datasets.",
    "data_engineer": "An analyst who also materializes features and manages datasets.",
    "privacy_officer": "Runs GDPR subject access exports and erasures and reads the audit log.",
    "admin": "Everything, including users, roles and API keys.",
}

_SEED = "dataintel-demo-v1"
SEED_DATA_VERSION = 1
"""Bumped whenever the rows of a scale change: stores seeded earlier (bench caches) are stale."""
_SPAN_SECONDS = int((WINDOW_END - WINDOW_START).total_seconds())
_MINUTE = 60
_HOUR = 3600
_DAY = 86_400

_COUNTRIES: Mapping[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "north_america": (("US", "CA"), (0.85, 0.15)),
    "europe": (("GB", "DE", "FR", "ES", "IT", "NL"), (0.25, 0.25, 0.2, 0.1, 0.1, 0.1)),
    "asia_pacific": (("AU", "JP", "IN", "SG", "NZ"), (0.3, 0.25, 0.2, 0.15, 0.1)),
    "latin_america": (("BR", "MX", "AR", "CL"), (0.45, 0.35, 0.1, 0.1)),
}
_REGION_WEIGHTS = (0.40, 0.30, 0.20, 0.10)
_TIER_WEIGHTS = (0.55, 0.28, 0.13, 0.04)
_TIER_ORDER_RATE = {"bronze": 1.0, "silver": 2.0, "gold": 3.5, "platinum": 6.0}
_ACQUISITION_WEIGHTS = (0.35, 0.25, 0.15, 0.15, 0.10)
_ORDER_CHANNEL_WEIGHTS = (0.55, 0.35, 0.10)
_BROWSE_CHANNELS = ("web", "mobile")
_BROWSE_CHANNEL_WEIGHTS = (0.6, 0.4)

_FIRST_NAMES = (
    "Ada", "Amara", "Ana", "Aziz", "Bea", "Carlos", "Chen", "Chloe", "Dmitri", "Elena",
    "Emeka", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Isaac", "Jamal", "Joao",
    "Julia", "Kenji", "Lars", "Leila", "Lucas", "Maya", "Mei", "Mateo", "Nadia", "Noah",
    "Olga", "Omar", "Priya", "Rafael", "Rosa", "Sofia", "Tariq", "Uma", "Yuki", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Adeyemi", "Alvarez", "Andersen", "Bauer", "Chen", "Costa", "Dubois", "Eriksson",
    "Fernandes", "Garcia", "Haddad", "Ito", "Jensen", "Kim", "Kowalski", "Lopez", "Martin",
    "Moreau", "Nakamura", "Novak", "Okafor", "Patel", "Quinn", "Rossi", "Sato", "Schmidt",
    "Silva", "Singh", "Smith", "Tanaka", "Nguyen", "Walker", "Weber", "Yilmaz", "Zhang",
)  # fmt: skip

_CATEGORY_WEIGHTS = (14, 16, 8, 14, 10, 16, 10, 12)
_CATEGORY_PRICE_DOLLARS: Mapping[str, tuple[int, int]] = {
    "electronics": (15, 400),
    "home": (8, 150),
    "garden": (5, 120),
    "books": (6, 45),
    "toys": (5, 90),
    "apparel": (10, 160),
    "beauty": (4, 80),
    "sports": (6, 200),
}
_CATEGORY_NOUNS: Mapping[str, tuple[str, ...]] = {
    "electronics": (
        "Headphones", "Speaker", "Charger", "Keyboard", "Mouse",
        "Monitor", "Webcam", "Power Bank", "Smartwatch", "Router",
    ),
    "home": (
        "Lamp", "Throw Blanket", "Cookware Set", "Vase", "Cutting Board",
        "Coffee Maker", "Towel Set", "Storage Box", "Wall Clock", "Candle",
    ),
    "garden": (
        "Hose", "Planter", "Pruning Shears", "Seed Kit", "Watering Can",
        "Garden Gloves", "Bird Feeder", "Solar Light", "Trowel", "Compost Bin",
    ),
    "books": (
        "Cookbook", "Novel", "Travel Guide", "Biography", "Poetry Collection",
        "Field Guide", "Graphic Novel", "Atlas", "Workbook", "Anthology",
    ),
    "toys": (
        "Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite",
        "Model Car", "Doll House", "Yo-Yo", "Train Set", "Card Game",
    ),
    "apparel": (
        "T-Shirt", "Hoodie", "Rain Jacket", "Sneakers", "Scarf",
        "Jeans", "Beanie", "Socks", "Dress", "Backpack",
    ),
    "beauty": (
        "Face Cream", "Shampoo", "Lip Balm", "Perfume", "Hair Dryer",
        "Nail Kit", "Sunscreen", "Body Lotion", "Face Mask", "Brush Set",
    ),
    "sports": (
        "Yoga Mat", "Dumbbells", "Tennis Racket", "Football", "Water Bottle",
        "Cycling Helmet", "Jump Rope", "Running Belt", "Resistance Bands", "Climbing Chalk",
    ),
}  # fmt: skip
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Premium",
    "Pro", "Smart", "Ultra", "Vintage", "Lightweight", "Everyday",
)  # fmt: skip

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SeedSummary:
    """What one seeding wrote: rows per table, the ledger's discrepancies, the quality defects."""

    scale: int
    customers: int
    products: int
    orders: int
    order_items: int
    events: int
    ledger_entries: int
    roles: int
    orders_missing_from_ledger: int
    """Non-cancelled orders that have no ledger entry."""
    ledger_amount_mismatches: int
    """Entries whose amount differs from their order's total (a few cents, or much more)."""
    ledger_large_amount_mismatches: int
    """Of those, entries off by a dollar or more (the rest by at most 9 cents)."""
    ledger_booked_at_outliers: int
    """Entries booked further than LEDGER_BOOKING_TOLERANCE from their order's placed_at."""
    ledger_entries_without_order: int
    """Entries whose order_id matches no order."""
    customers_without_country: int
    """Customers whose country is blank ('')."""
    duplicated_customer_emails: int
    """Addresses held by two customers, spelled with other letter case (the column is unique)."""
    orders_total_out_of_range: int
    """Cancelled orders whose total was stored negated (below zero; items unchanged)."""
    stopped_channel_events_missing: int
    """Events of STOPPED_EVENTS_CHANNEL in the last STOPPED_EVENTS_GAP, left out."""
    stopped_channel_last_event_at: datetime | None
    """The stopped channel's latest event."""


@dataclass(frozen=True, slots=True)
class _QualityDefects:
    customers_without_country: int
    duplicated_customer_emails: int
    orders_total_out_of_range: int
    stopped_channel_events_missing: int
    stopped_channel_last_event_at: datetime | None


@dataclass(frozen=True, slots=True)
class _DemoRows:
    customers: list[Row]
    products: list[Row]
    orders: list[Row]
    order_items: list[Row]
    events: list[Row]
    ledger_entries: list[Row]
    orders_missing_from_ledger: int
    ledger_amount_mismatches: int
    ledger_large_amount_mismatches: int
    ledger_booked_at_outliers: int
    ledger_entries_without_order: int
    defects: _QualityDefects


def _random(part: str, scale: int) -> random.Random:
    # One generator per table: changing how events are drawn leaves the orders as they are.
    # A str seed is hashed with SHA-512, the same in every process (unlike hash()).
    return random.Random(f"{_SEED}:{part}:{scale}")


def _moment(seconds: int) -> datetime:
    return WINDOW_START + timedelta(seconds=seconds)


def _products(count: int) -> list[Row]:
    # Not per scale: a larger scale keeps the smaller one's products and adds more.
    chance = _random("products", 1)
    used_names: set[str] = set()
    rows: list[Row] = []
    for product_id in range(1, count + 1):
        category = chance.choices(tables.CATEGORIES, _CATEGORY_WEIGHTS)[0]
        name = f"{chance.choice(_ADJECTIVES)} {chance.choice(_CATEGORY_NOUNS[category])}"
        base_name, series = name, 1
        while name in used_names:
            series += 1
            name = f"{base_name} {series}"
        used_names.add(name)
        low, high = _CATEGORY_PRICE_DOLLARS[category]
        dollars = int(math.exp(chance.uniform(math.log(low), math.log(high))))
        rows.append(
            {
                "id": product_id,
                "sku": f"{category[:3].upper()}-{product_id:05d}",
                "name": name,
                "category": category,
                "price_cents": dollars * 100 + 99,
            }
        )
    return rows


def _growing_share(chance: random.Random) -> float:
    # Sign-ups grow over the window: 40% spread evenly, 60% with a density rising linearly.
    return chance.random() if chance.random() < 0.4 else chance.random() ** 0.5


def _customers(count: int, scale: int) -> list[Row]:
    chance = _random("customers", scale)
    latest_sign_up = _SPAN_SECONDS - 14 * _DAY
    sign_ups = sorted(
        _HOUR + int((latest_sign_up - _HOUR) * _growing_share(chance)) for _ in range(count)
    )
    rows: list[Row] = []
    for customer_id, signed_up in enumerate(sign_ups, start=1):
        region = chance.choices(tables.REGIONS, _REGION_WEIGHTS)[0]
        countries, country_weights = _COUNTRIES[region]
        first, last = chance.choice(_FIRST_NAMES), chance.choice(_LAST_NAMES)
        rows.append(
            {
                "id": customer_id,
                "code": f"C{customer_id:06d}",
                "email": f"{first}.{last}.{customer_id}@example.com".lower(),
                "name": f"{first} {last}",
                "region": region,
                "country": chance.choices(countries, country_weights)[0],
                "tier": chance.choices(tables.TIERS, _TIER_WEIGHTS)[0],
                "acquisition_channel": chance.choices(
                    tables.ACQUISITION_CHANNELS, _ACQUISITION_WEIGHTS
                )[0],
                "signed_up_at": signed_up,
            }
        )
    return rows


def _season(seconds: int) -> float:
    # Holiday months and weekends sell more, so analytics by month and weekday have a shape.
    moment = _moment(seconds)
    month = {11: 1.4, 12: 1.6}.get(moment.month, 1.0)
    weekend = 1.15 if moment.weekday() >= 5 else 1.0
    return month * weekend


_MOST_SEASONAL = 1.6 * 1.15


def _status(chance: random.Random, age_seconds: int) -> str:
    roll = chance.random()
    if roll < 0.05:
        return "cancelled"
    if age_seconds < _DAY:
        return "placed" if roll < 0.5 else "paid"
    if age_seconds < 3 * _DAY:
        return "paid" if roll < 0.45 else "shipped"
    if age_seconds < 10 * _DAY:
        return "shipped" if roll < 0.65 else "delivered"
    return "refunded" if roll < 0.10 else "delivered"


def _orders_and_items(
    count: int, scale: int, customers: Sequence[Row], products: Sequence[Row]
) -> tuple[list[Row], list[Row]]:
    chance = _random("orders", scale)
    # Some customers never buy; the others buy by tier and by how long they have been around.
    weights = [
        0.0
        if chance.random() < 0.15
        else _TIER_ORDER_RATE[customer["tier"]]
        * (_SPAN_SECONDS - customer["signed_up_at"])
        / _SPAN_SECONDS
        for customer in customers
    ]
    buyers = chance.choices(range(len(customers)), cum_weights=list(accumulate(weights)), k=count)
    drafts: list[tuple[int, int, int]] = []
    for draw, buyer in enumerate(buyers):
        earliest = customers[buyer]["signed_up_at"] + 30 * _MINUTE
        while True:
            placed = chance.randint(earliest, _SPAN_SECONDS)
            if chance.random() * _MOST_SEASONAL < _season(placed):
                break
        drafts.append((placed, draw, buyer))
    drafts.sort()

    ranks = list(range(1, len(products) + 1))
    chance.shuffle(ranks)
    popularity = list(accumulate(1.0 / rank**0.8 for rank in ranks))
    orders: list[Row] = []
    items: list[Row] = []
    for order_id, (placed, _draw, buyer) in enumerate(drafts, start=1):
        wanted = chance.choices((1, 2, 3, 4, 5), (30, 28, 20, 13, 9))[0]
        chosen: list[int] = []
        while len(chosen) < wanted:
            index = bisect_right(popularity, chance.random() * popularity[-1])
            if index not in chosen:
                chosen.append(index)
        total = 0
        for index in chosen:
            quantity = chance.choices((1, 2, 3), (75, 18, 7))[0]
            price = products[index]["price_cents"]
            if chance.random() < 0.12:
                price = price * (100 - chance.choice((10, 15, 20, 25))) // 100
            total += quantity * price
            items.append(
                {
                    "id": len(items) + 1,
                    "order_id": order_id,
                    "product_id": products[index]["id"],
                    "quantity": quantity,
                    "unit_price_cents": price,
                }
            )
        orders.append(
            {
                "id": order_id,
                "customer_id": customers[buyer]["id"],
                "status": _status(chance, _SPAN_SECONDS - placed),
                "channel": chance.choices(tables.SALES_CHANNELS, _ORDER_CHANNEL_WEIGHTS)[0],
                "placed_at": placed,
                "total_cents": total,
                "currency": "USD",
            }
        )
    return orders, items


def _events(scale: int, customers: Sequence[Row], orders: Sequence[Row]) -> list[Row]:
    chance = _random("events", scale)
    drafts: list[tuple[int, int, int | None, str, str, str]] = []

    def session() -> str:
        return f"{chance.getrandbits(64):016x}"

    def add(at: int, customer_id: int | None, session_id: str, kind: str, channel: str) -> None:
        drafts.append((at, len(drafts), customer_id, session_id, kind, channel))

    # A visitor views a page, then signs up.
    for customer in customers:
        session_id, channel = (
            session(),
            chance.choices(_BROWSE_CHANNELS, _BROWSE_CHANNEL_WEIGHTS)[0],
        )
        signed_up = customer["signed_up_at"]
        add(signed_up - chance.randint(1, 15) * _MINUTE, None, session_id, "page_view", channel)
        add(signed_up, customer["id"], session_id, "sign_up", channel)

    # Every order closes a session: page views, a cart, the purchase at placed_at.
    for order in orders:
        session_id, channel, placed = session(), order["channel"], order["placed_at"]
        buyer = order["customer_id"]
        page_views = chance.choices((1, 2, 3), (55, 30, 15))[0]
        for minutes in sorted((chance.randint(5, 25) for _ in range(page_views)), reverse=True):
            add(placed - minutes * _MINUTE, buyer, session_id, "page_view", channel)
        add(placed - chance.randint(1, 4) * _MINUTE, buyer, session_id, "add_to_cart", channel)
        add(placed, buyer, session_id, "purchase", channel)

    # Sessions that do not convert: anonymous visitors, and customers who only look.
    for _ in range(6000 * scale):
        session_id, channel = (
            session(),
            chance.choices(_BROWSE_CHANNELS, _BROWSE_CHANNEL_WEIGHTS)[0],
        )
        customer_id: int | None = None
        earliest = 0
        if chance.random() < 0.45:
            customer = chance.choice(customers)
            customer_id, earliest = customer["id"], customer["signed_up_at"] + _HOUR
        at = chance.randint(earliest, _SPAN_SECONDS - _HOUR)
        for _page in range(chance.choices((1, 2, 3, 4), (50, 25, 15, 10))[0]):
            add(at, customer_id, session_id, "page_view", channel)
            at += chance.randint(20, 180)
        if chance.random() < 0.3:
            add(at, customer_id, session_id, "add_to_cart", channel)

    drafts.sort()
    return [
        {
            "id": event_id,
            "customer_id": customer_id,
            "session_id": session_id,
            "type": kind,
            "channel": channel,
            "occurred_at": at,
        }
        for event_id, (at, _draw, customer_id, session_id, kind, channel) in enumerate(
            drafts, start=1
        )
    ]


@dataclass(frozen=True, slots=True)
class _Ledger:
    entries: list[Row]
    missing: int
    amount_mismatches: int
    large_amount_mismatches: int
    booked_at_outliers: int
    without_order: int


def _ledger(scale: int, orders: Sequence[Row]) -> _Ledger:
    chance = _random("ledger", scale)
    eligible = [order for order in orders if order["status"] != "cancelled"]
    missing_count, amount_count, booked_count, orphan_count = (
        25 * scale,
        20 * scale,
        15 * scale,
        8 * scale,
    )
    picked = chance.sample(range(len(eligible)), missing_count + amount_count + booked_count)
    missing = set(picked[:missing_count])
    wrong_amount = set(picked[missing_count : missing_count + amount_count])
    booked_off = set(picked[missing_count + amount_count :])

    drafts: list[tuple[int, int, int, str]] = []
    mismatches = large = 0
    for index, order in enumerate(eligible):
        if index in missing:
            continue
        placed, amount = order["placed_at"], order["total_cents"]
        booked = placed + chance.randint(2 * _MINUTE, 2 * _HOUR)
        if index in booked_off:
            shift = chance.randint(3 * _DAY, 30 * _DAY)
            # Late when the window has room, else early: far off either way.
            booked = placed + shift if placed + shift <= _SPAN_SECONDS else placed - shift
        if index in wrong_amount:
            # Every fourth is off by dollars, the rest by a few cents (rounding-like errors).
            if mismatches % 4 == 0:
                delta = chance.randint(100, 5000)
                large += 1
            else:
                delta = chance.randint(1, LEDGER_SMALL_AMOUNT_DIFFERENCE_CENTS)
            mismatches += 1
            amount = amount - delta if amount - delta > 0 else amount + delta
        status = "reversed" if order["status"] == "refunded" else "booked"
        drafts.append((booked, order["id"], amount, status))
    for number in range(1, orphan_count + 1):
        booked = chance.randint(0, _SPAN_SECONDS)
        drafts.append(
            (booked, ORPHAN_ORDER_ID_BASE + number, chance.randint(500, 20_000), "booked")
        )

    drafts.sort()
    entries = [
        {
            "id": entry_id,
            "entry_ref": f"LE-{entry_id:08d}",
            "order_id": order_id,
            "amount_cents": amount,
            "currency": "USD",
            "booked_at": booked,
            "status": status,
        }
        for entry_id, (booked, order_id, amount, status) in enumerate(drafts, start=1)
    ]
    return _Ledger(entries, missing_count, amount_count, large, booked_count, orphan_count)


def _customer_defects(scale: int, customers: list[Row]) -> tuple[int, int]:
    # Drawn from a generator of their own, after the rows: every other draw stays as it was.
    chance = _random("customer-defects", scale)
    blank_count, shared_count = 3 * scale, 4 * scale
    picked = chance.sample(range(len(customers)), blank_count + 2 * shared_count)
    for index in picked[:blank_count]:
        customers[index]["country"] = ""
    pairs = picked[blank_count:]
    for owner, sharer in zip(pairs[::2], pairs[1::2], strict=True):
        # The store's unique index compares exactly; the same mailbox capitalized slips past it.
        customers[sharer]["email"] = customers[owner]["email"].capitalize()
    return blank_count, shared_count


def _order_defects(scale: int, orders: list[Row]) -> int:
    # Only cancelled orders: revenue, the ledger and the features never count them.
    chance = _random("order-defects", scale)
    cancelled = [order for order in orders if order["status"] == "cancelled"]
    picked = chance.sample(cancelled, 5 * scale)
    for order in picked:
        order["total_cents"] = -order["total_cents"]
    return len(picked)


def _stop_channel_early(events: list[Row]) -> tuple[list[Row], int, int | None]:
    cutoff = _SPAN_SECONDS - int(STOPPED_EVENTS_GAP.total_seconds())
    kept = [
        event
        for event in events
        if event["channel"] != STOPPED_EVENTS_CHANNEL or event["occurred_at"] <= cutoff
    ]
    for event_id, event in enumerate(kept, start=1):
        event["id"] = event_id
    last = max(
        (event["occurred_at"] for event in kept if event["channel"] == STOPPED_EVENTS_CHANNEL),
        default=None,
    )
    return kept, len(events) - len(kept), last


def _with_moments(rows: list[Row], *columns: str) -> list[Row]:
    # Rows are drawn with seconds since WINDOW_START (cheap to compare); the store gets moments.
    for row in rows:
        for column in columns:
            row[column] = _moment(row[column])
    return rows


def _generate(scale: int) -> _DemoRows:
    products = _products(round(200 * math.sqrt(scale)))
    customers = _customers(1000 * scale, scale)
    orders, items = _orders_and_items(10_000 * scale, scale, customers, products)
    events, events_missing, last_stopped = _stop_channel_early(_events(scale, customers, orders))
    without_country, shared_emails = _customer_defects(scale, customers)
    out_of_range = _order_defects(scale, orders)
    ledger = _ledger(scale, orders)
    return _DemoRows(
        customers=_with_moments(customers, "signed_up_at"),
        products=products,
        orders=_with_moments(orders, "placed_at"),
        order_items=items,
        events=_with_moments(events, "occurred_at"),
        ledger_entries=_with_moments(ledger.entries, "booked_at"),
        orders_missing_from_ledger=ledger.missing,
        ledger_amount_mismatches=ledger.amount_mismatches,
        ledger_large_amount_mismatches=ledger.large_amount_mismatches,
        ledger_booked_at_outliers=ledger.booked_at_outliers,
        ledger_entries_without_order=ledger.without_order,
        defects=_QualityDefects(
            customers_without_country=without_country,
            duplicated_customer_emails=shared_emails,
            orders_total_out_of_range=out_of_range,
            stopped_channel_events_missing=events_missing,
            stopped_channel_last_event_at=None if last_stopped is None else _moment(last_stopped),
        ),
    )


def _written_counts(rows: _DemoRows) -> Counter[tuple[str, str]]:
    """Rows per table and UTC day of their time, as row_change_counts' triggers count them."""
    counts: Counter[tuple[str, str]] = Counter()
    placed = {order["id"]: order["placed_at"] for order in rows.orders}
    timed = (
        ("orders", rows.orders, lambda row: row["placed_at"]),
        ("events", rows.events, lambda row: row["occurred_at"]),
        ("order_items", rows.order_items, lambda row: placed.get(row["order_id"])),
        ("ledger_entries", rows.ledger_entries, lambda row: row["booked_at"]),
    )
    for table_name, table_rows, time_of in timed:
        counts.update(
            (table_name, tables.counter_period(moment)) for moment in map(time_of, table_rows)
        )
    counts[("customers", "*")] += len(rows.customers)
    counts[("products", "*")] += len(rows.products)
    return counts


async def _restart_sequences(connection: AsyncConnection) -> None:
    # Explicit ids leave PostgreSQL's sequences behind; the next insert without an id
    # would collide with a seeded row.
    for table in (
        tables.customers,
        tables.products,
        tables.orders,
        tables.order_items,
        tables.events,
        tables.ledger_entries,
    ):
        await connection.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
            )
        )


async def _seed_roles(connection: AsyncConnection) -> None:
    roles = tables.roles
    existing = dict((await connection.execute(sa.select(roles.c.name, roles.c.description))).all())
    for name, description in ROLE_DESCRIPTIONS.items():
        if name not in existing:
            await connection.execute(sa.insert(roles).values(name=name, description=description))
        elif existing[name] != description:
            await connection.execute(
                sa.update(roles).where(roles.c.name == name).values(description=description)
            )


async def seed(engine: AsyncEngine, scale: int = 1) -> SeedSummary:
    """Replaces the demo data with the rows of ``scale`` (same scale, same rows) and adds roles."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    rows = _generate(scale)
    names = [table.name for table in tables.DEMO_TABLES]
    async with engine.begin() as connection:
        # Every row is deleted: every period that held rows (each has a counter) changes.
        # Also the first write, which opens SQLite's transaction before triggers are dropped.
        await mark_all_written(connection, names)
        async with row_triggers_suspended(connection, names) as suspended:
            for table in reversed(tables.DEMO_TABLES):
                await connection.execute(sa.delete(table))
            for table, table_rows in (
                (tables.products, rows.products),
                (tables.customers, rows.customers),
                (tables.orders, rows.orders),
                (tables.order_items, rows.order_items),
                (tables.events, rows.events),
                (tables.ledger_entries, rows.ledger_entries),
            ):
                await insert_rows(connection, table, table_rows)
            if suspended:
                # What the triggers would have counted for the rows written.
                await add_written_counts(connection, _written_counts(rows))
        if connection.dialect.name == "postgresql":
            await _restart_sequences(connection)
        await _seed_roles(connection)
    return SeedSummary(
        scale=scale,
        customers=len(rows.customers),
        products=len(rows.products),
        orders=len(rows.orders),
        order_items=len(rows.order_items),
        events=len(rows.events),
        ledger_entries=len(rows.ledger_entries),
        roles=len(ROLE_DESCRIPTIONS),
        orders_missing_from_ledger=rows.orders_missing_from_ledger,
        ledger_amount_mismatches=rows.ledger_amount_mismatches,
        ledger_large_amount_mismatches=rows.ledger_large_amount_mismatches,
        ledger_booked_at_outliers=rows.ledger_booked_at_outliers,
        ledger_entries_without_order=rows.ledger_entries_without_order,
        customers_without_country=rows.defects.customers_without_country,
        duplicated_customer_emails=rows.defects.duplicated_customer_emails,
        orders_total_out_of_range=rows.defects.orders_total_out_of_range,
        stopped_channel_events_missing=rows.defects.stopped_channel_events_missing,
        stopped_channel_last_event_at=rows.defects.stopped_channel_last_event_at,
    )


async def is_seeded(engine: AsyncEngine) -> bool:
    """Whether the store holds demo data (customers and orders), e.g. to seed only once."""
    statement = sa.select(
        sa.select(tables.customers.c.id).exists(),
        sa.select(tables.orders.c.id).exists(),
    )
    async with engine.connect() as connection:
        has_customers, has_orders = (await connection.execute(statement)).one()
    return bool(has_customers and has_orders)
