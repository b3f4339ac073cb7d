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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from operator import itemgetter
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.bulk_load import (
    add_written_counts,
    indexes_suspended,
    insert_rows,
    mark_all_written,
    page_cache_enlarged,
    row_triggers_suspended,
)
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade

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


def _random(part: str, scale: int) -> random.Random:
    # One generator per table: changing how events are drawn leaves the orders as they are.
    # A str seed is hashed with SHA-512, the same in every process (unlike hash()).
    return random.Random(f"{_SEED}:{part}:{scale}")


# Random's own choices(), choice() and randint() set up each call anew (running totals of the
# weights, range checks), which was most of the time of a large seed. These draw the very
# same numbers from the generator as those do (CPython's algorithms, which the frozen digest
# test pins): a weighted choice bisects one random() into the running totals, a choice or a
# randint takes getrandbits of the range's bit length until it falls below the range.


T = TypeVar("T")


def _weighted(
    chance: random.Random, population: Sequence[T], weights: Sequence[float]
) -> Callable[[], T]:
    """What ``chance.choices(population, weights)[0]`` draws, one call at a time."""
    totals = list(accumulate(weights))
    total, last, draw = totals[-1] + 0.0, len(population) - 1, chance.random
    return lambda: population[bisect_right(totals, draw() * total, 0, last)]


def _below(getrandbits: Callable[[int], int], n: int) -> int:
    """What ``chance.randrange(n)`` draws, with ``getrandbits`` the generator's own."""
    bits = n.bit_length()
    drawn = getrandbits(bits)
    while drawn >= n:
        drawn = getrandbits(bits)
    return drawn


def _moment(seconds: int) -> datetime:
    return WINDOW_START + timedelta(seconds=seconds)


# Rows are tuples in these columns' order, moments as whole seconds since WINDOW_START
# (cheap to draw and compare); insert_rows turns them into what the store keeps.
_PRODUCT_COLUMNS = ("id", "sku", "name", "category", "price_cents")
_CUSTOMER_COLUMNS = (
    "id", "code", "email", "name", "region", "country", "tier", "acquisition_channel",
    "signed_up_at",
)  # fmt: skip
_ORDER_COLUMNS = ("id", "customer_id", "status", "channel", "placed_at", "total_cents", "currency")
_ORDER_ITEM_COLUMNS = ("id", "order_id", "product_id", "quantity", "unit_price_cents")
_EVENT_COLUMNS = ("id", "customer_id", "session_id", "type", "channel", "occurred_at")
_LEDGER_COLUMNS = (
    "id", "entry_ref", "order_id", "amount_cents", "currency", "booked_at", "status",
)  # fmt: skip
_PRICE_COLUMN = _PRODUCT_COLUMNS.index("price_cents")
_COUNTRY_COLUMN = _CUSTOMER_COLUMNS.index("country")
_EMAIL_COLUMN = _CUSTOMER_COLUMNS.index("email")
_STATUS_COLUMN = _ORDER_COLUMNS.index("status")
_PLACED_COLUMN = _ORDER_COLUMNS.index("placed_at")
_TOTAL_COLUMN = _ORDER_COLUMNS.index("total_cents")
_ITEM_ORDER_COLUMN = _ORDER_ITEM_COLUMNS.index("order_id")
_BOOKED_COLUMN = _LEDGER_COLUMNS.index("booked_at")

Row = tuple[Any, ...]


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
            (
                product_id,
                f"{category[:3].upper()}-{product_id:05d}",
                name,
                category,
                dollars * 100 + 99,
            )
        )
    return rows


def _growing_share(chance: random.Random) -> float:
    # Sign-ups grow over the window: 40% spread evenly, 60% with a density rising linearly.
    return chance.random() if chance.random() < 0.4 else chance.random() ** 0.5


@dataclass(frozen=True, slots=True)
class _Customers:
    rows: list[Row]
    signed_up: list[int]
    tiers: list[str]


def _customers(count: int, scale: int) -> _Customers:
    chance = _random("customers", scale)
    getrandbits = chance.getrandbits
    latest_sign_up = _SPAN_SECONDS - 14 * _DAY
    sign_ups = sorted(
        _HOUR + int((latest_sign_up - _HOUR) * _growing_share(chance)) for _ in range(count)
    )
    region_of = _weighted(chance, tables.REGIONS, _REGION_WEIGHTS)
    country_of = {
        region: _weighted(chance, countries, weights)
        for region, (countries, weights) in _COUNTRIES.items()
    }
    tier_of = _weighted(chance, tables.TIERS, _TIER_WEIGHTS)
    acquisition_of = _weighted(chance, tables.ACQUISITION_CHANNELS, _ACQUISITION_WEIGHTS)
    firsts, lasts = len(_FIRST_NAMES), len(_LAST_NAMES)
    rows: list[Row] = []
    tiers: list[str] = []
    for customer_id, signed_up in enumerate(sign_ups, start=1):
        region = region_of()
        first = _FIRST_NAMES[_below(getrandbits, firsts)]
        last = _LAST_NAMES[_below(getrandbits, lasts)]
        country = country_of[region]()
        tier = tier_of()
        tiers.append(tier)
        rows.append(
            (
                customer_id,
                f"C{customer_id:06d}",
                f"{first}.{last}.{customer_id}@example.com".lower(),
                f"{first} {last}",
                region,
                country,
                tier,
                acquisition_of(),
                signed_up,
            )
        )
    return _Customers(rows, sign_ups, tiers)


def _day_seasons() -> list[float]:
    # Holiday months and weekends sell more, so analytics by month and weekday have a shape.
    # Per day of the window (it starts at midnight UTC): a draw looks up its day's factor.
    seasons: list[float] = []
    for day in range(_SPAN_SECONDS // _DAY + 1):
        moment = _moment(day * _DAY)
        month = {11: 1.4, 12: 1.6}.get(moment.month, 1.0)
        weekend = 1.15 if moment.weekday() >= 5 else 1.0
        seasons.append(month * weekend)
    return seasons


_MOST_SEASONAL = 1.6 * 1.15


def _status(roll: float, age_seconds: int) -> str:
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
    count: int, scale: int, customers: _Customers, prices: Sequence[int]
) -> tuple[list[Row], list[Row]]:
    chance = _random("orders", scale)
    draw, getrandbits = chance.random, chance.getrandbits
    # Some customers never buy; the others buy by tier and by how long they have been around.
    weights = [
        0.0
        if draw() < 0.15
        else _TIER_ORDER_RATE[tier] * (_SPAN_SECONDS - signed_up) / _SPAN_SECONDS
        for tier, signed_up in zip(customers.tiers, customers.signed_up, strict=True)
    ]
    buyers = chance.choices(
        range(len(customers.rows)), cum_weights=list(accumulate(weights)), k=count
    )
    seasons = _day_seasons()
    drafts: list[tuple[int, int, int]] = []
    for draw_number, buyer in enumerate(buyers):
        earliest = customers.signed_up[buyer] + 30 * _MINUTE
        width = _SPAN_SECONDS - earliest + 1
        while True:
            placed = earliest + _below(getrandbits, width)
            if draw() * _MOST_SEASONAL < seasons[placed // _DAY]:
                break
        drafts.append((placed, draw_number, buyer))
    drafts.sort()

    ranks = list(range(1, len(prices) + 1))
    chance.shuffle(ranks)
    popularity = list(accumulate(1.0 / rank**0.8 for rank in ranks))
    most_popular = popularity[-1]
    wanted_of = _weighted(chance, (1, 2, 3, 4, 5), (30, 28, 20, 13, 9))
    quantity_of = _weighted(chance, (1, 2, 3), (75, 18, 7))
    channel_of = _weighted(chance, tables.SALES_CHANNELS, _ORDER_CHANNEL_WEIGHTS)
    discounts = (10, 15, 20, 25)
    orders: list[Row] = []
    items: list[Row] = []
    for order_id, (placed, _draw, buyer) in enumerate(drafts, start=1):
        wanted = wanted_of()
        chosen: list[int] = []
        while len(chosen) < wanted:
            index = bisect_right(popularity, draw() * most_popular)
            if index not in chosen:
                chosen.append(index)
        total = 0
        for index in chosen:
            quantity = quantity_of()
            price = prices[index]
            if draw() < 0.12:
                price = price * (100 - discounts[_below(getrandbits, 4)]) // 100
            total += quantity * price
            items.append((len(items) + 1, order_id, index + 1, quantity, price))
        status = _status(draw(), _SPAN_SECONDS - placed)
        orders.append((order_id, buyer + 1, status, channel_of(), placed, total, "USD"))
    return orders, items


EventDraft = tuple[int, int, int | None, str, str, str]
"""An event as drawn: when, the draw's number (ties keep draw order), then its columns."""
_DRAFT_CHANNEL = 5


def _events(scale: int, customers: _Customers, orders: Sequence[Row]) -> list[EventDraft]:
    """Every event drawn, in time order."""
    chance = _random("events", scale)
    draw, getrandbits = chance.random, chance.getrandbits
    browse_channel_of = _weighted(chance, _BROWSE_CHANNELS, _BROWSE_CHANNEL_WEIGHTS)
    page_views_of = _weighted(chance, (1, 2, 3), (55, 30, 15))
    pages_of = _weighted(chance, (1, 2, 3, 4), (50, 25, 15, 10))
    drafts: list[EventDraft] = []
    add = drafts.append

    # A visitor views a page, then signs up.
    for signer, signed_up in enumerate(customers.signed_up, start=1):
        session_id, channel = f"{getrandbits(64):016x}", browse_channel_of()
        viewed = signed_up - (1 + _below(getrandbits, 15)) * _MINUTE
        add((viewed, len(drafts), None, session_id, "page_view", channel))
        add((signed_up, len(drafts), signer, session_id, "sign_up", channel))

    # Every order closes a session: page views, a cart, the purchase at placed_at.
    for _id, buyer, _status, channel, placed, _total, _currency in orders:
        session_id = f"{getrandbits(64):016x}"
        page_views = page_views_of()
        for minutes in sorted(
            (5 + _below(getrandbits, 21) for _ in range(page_views)), reverse=True
        ):
            add((placed - minutes * _MINUTE, len(drafts), buyer, session_id, "page_view", channel))
        carted = placed - (1 + _below(getrandbits, 4)) * _MINUTE
        add((carted, len(drafts), buyer, session_id, "add_to_cart", channel))
        add((placed, len(drafts), buyer, session_id, "purchase", channel))

    # Sessions that do not convert: anonymous visitors, and customers who only look.
    customer_count = len(customers.signed_up)
    for _ in range(6000 * scale):
        session_id, channel = f"{getrandbits(64):016x}", browse_channel_of()
        customer_id: int | None = None
        earliest = 0
        if draw() < 0.45:
            index = _below(getrandbits, customer_count)
            customer_id, earliest = index + 1, customers.signed_up[index] + _HOUR
        at = earliest + _below(getrandbits, _SPAN_SECONDS - _HOUR - earliest + 1)
        for _page in range(pages_of()):
            add((at, len(drafts), customer_id, session_id, "page_view", channel))
            at += 20 + _below(getrandbits, 161)
        if draw() < 0.3:
            add((at, len(drafts), customer_id, session_id, "add_to_cart", channel))

    drafts.sort()
    return drafts


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
    getrandbits = chance.getrandbits
    eligible = [order for order in orders if order[_STATUS_COLUMN] != "cancelled"]
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
    booking_delays = 2 * _HOUR - 2 * _MINUTE + 1
    for index, (order_id, _buyer, status, _channel, placed, amount, _currency) in enumerate(
        eligible
    ):
        if index in missing:
            continue
        booked = placed + 2 * _MINUTE + _below(getrandbits, booking_delays)
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
        drafts.append((booked, order_id, amount, "reversed" if status == "refunded" else "booked"))
    for number in range(1, orphan_count + 1):
        booked = chance.randint(0, _SPAN_SECONDS)
        drafts.append(
            (booked, ORPHAN_ORDER_ID_BASE + number, chance.randint(500, 20_000), "booked")
        )

    drafts.sort()
    entries = [
        (entry_id, f"LE-{entry_id:08d}", order_id, amount, "USD", booked, status)
        for entry_id, (booked, order_id, amount, status) in enumerate(drafts, start=1)
    ]
    return _Ledger(entries, missing_count, amount_count, large, booked_count, orphan_count)


def _customer_defects(scale: int, customers: list[Row]) -> tuple[int, int]:
    # Drawn from a generator of their own, after the rows: every other draw stays as it was.
    chance = _random("customer-defects", scale)
    blank_count, shared_count = 3 * scale, 4 * scale
    picked = chance.sample(range(len(customers)), blank_count + 2 * shared_count)

    def edited(index: int, column: int, value: str) -> None:
        row = customers[index]
        customers[index] = (*row[:column], value, *row[column + 1 :])

    for index in picked[:blank_count]:
        edited(index, _COUNTRY_COLUMN, "")
    pairs = picked[blank_count:]
    for owner, sharer in zip(pairs[::2], pairs[1::2], strict=True):
        # The store's unique index compares exactly; the same mailbox capitalized slips past it.
        edited(sharer, _EMAIL_COLUMN, customers[owner][_EMAIL_COLUMN].capitalize())
    return blank_count, shared_count


def _order_defects(scale: int, orders: list[Row]) -> int:
    # Only cancelled orders: revenue, the ledger and the features never count them.
    chance = _random("order-defects", scale)
    cancelled = [
        index for index, order in enumerate(orders) if order[_STATUS_COLUMN] == "cancelled"
    ]
    picked = chance.sample(cancelled, 5 * scale)
    for index in picked:
        row = orders[index]
        orders[index] = (*row[:_TOTAL_COLUMN], -row[_TOTAL_COLUMN], *row[_TOTAL_COLUMN + 1 :])
    return len(picked)


def _stop_channel_early(drafts: list[EventDraft]) -> tuple[int, int | None]:
    """Leaves out the stopped channel's last events (in place); how many, and its last one."""
    cutoff = _SPAN_SECONDS - int(STOPPED_EVENTS_GAP.total_seconds())
    # Drafts are in time order: only the tail after the cutoff can lose any.
    tail_start = bisect_right(drafts, cutoff, key=itemgetter(0))
    tail = drafts[tail_start:]
    kept = [draft for draft in tail if draft[_DRAFT_CHANNEL] != STOPPED_EVENTS_CHANNEL]
    drafts[tail_start:] = kept
    last = next(
        (draft[0] for draft in reversed(drafts) if draft[_DRAFT_CHANNEL] == STOPPED_EVENTS_CHANNEL),
        None,
    )
    return len(tail) - len(kept), last


def _numbered_events(drafts: Sequence[EventDraft]) -> Iterator[Row]:
    for event_id, (at, _draw, customer_id, session_id, kind, channel) in enumerate(drafts, start=1):
        yield event_id, customer_id, session_id, kind, channel, at


def _days(moments: Iterable[int]) -> Counter[int]:
    """How many of the moments (seconds since WINDOW_START) fall on each day of the window."""
    return Counter(seconds // _DAY for seconds in moments)


def _written_counts(
    days: Mapping[str, Counter[int]], untimed: Mapping[str, int]
) -> Counter[tuple[str, str]]:
    """Rows per table and UTC day of their time, as row_change_counts' triggers count them.

    ``days`` holds the timed tables' rows per day of the window (see ``_days``).
    """
    counts: Counter[tuple[str, str]] = Counter()
    for table_name, written_per_day in days.items():
        for day, written in written_per_day.items():
            counts[(table_name, tables.counter_period(_moment(day * _DAY)))] += written
    for table_name, written in untimed.items():
        counts[(table_name, "*")] += written
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


_LOAD_CACHE_MEBIBYTES = 128
"""SQLite's page cache while seeding: most of the indexes' sorting at ``--scale 100``."""


async def _insert(
    connection: AsyncConnection, table: sa.Table, columns: Sequence[str], rows: Iterable[Row]
) -> None:
    await insert_rows(connection, table, columns, rows, moments_since=WINDOW_START)


async def _analyze(engine: AsyncEngine, names: Sequence[str]) -> None:
    """Statistics for the tables just loaded: without them PostgreSQL's planner guesses (a
    lookup of a few thousand sessions by index planned as a scan of every event) until
    autovacuum gets round to them, which on a busy server can take longer than a bench."""
    async with engine.connect() as connection:
        for name in names:
            await connection.execute(sa.text(f'ANALYZE "{name}"'))
        await connection.commit()


async def seed(engine: AsyncEngine, scale: int = 1) -> SeedSummary:
    """Replaces the demo data with the rows of ``scale`` (same scale, same rows) and adds roles.

    The rows are drawn table by table inside the one transaction, each table written and
    let go as soon as nothing later needs it: ``--scale 100`` never holds all of them at once.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    names = [table.name for table in tables.DEMO_TABLES]
    async with engine.begin() as connection:
        # Every row is deleted: every period that held rows (each has a counter) changes.
        # Also the first write, which opens SQLite's transaction before triggers are dropped.
        await mark_all_written(connection, names)
        async with (
            row_triggers_suspended(connection, names) as suspended,
            indexes_suspended(connection, names),
            page_cache_enlarged(connection, _LOAD_CACHE_MEBIBYTES),
        ):
            for table in reversed(tables.DEMO_TABLES):
                await connection.execute(sa.delete(table))
            products = _products(round(200 * math.sqrt(scale)))
            await _insert(connection, tables.products, _PRODUCT_COLUMNS, products)
            customers = _customers(1000 * scale, scale)
            without_country, shared_emails = _customer_defects(scale, customers.rows)
            await _insert(connection, tables.customers, _CUSTOMER_COLUMNS, customers.rows)
            orders, items = _orders_and_items(
                10_000 * scale, scale, customers, [product[_PRICE_COLUMN] for product in products]
            )
            out_of_range = _order_defects(scale, orders)
            await _insert(connection, tables.orders, _ORDER_COLUMNS, orders)
            await _insert(connection, tables.order_items, _ORDER_ITEM_COLUMNS, items)
            days = {
                "orders": _days(map(itemgetter(_PLACED_COLUMN), orders)),
                "order_items": _days(
                    orders[item[_ITEM_ORDER_COLUMN] - 1][_PLACED_COLUMN] for item in items
                ),
            }
            item_count = len(items)
            del items
            events = _events(scale, customers, orders)
            events_missing, last_stopped = _stop_channel_early(events)
            await _insert(connection, tables.events, _EVENT_COLUMNS, _numbered_events(events))
            days["events"] = _days(map(itemgetter(0), events))
            event_count = len(events)
            del events
            ledger = _ledger(scale, orders)
            await _insert(connection, tables.ledger_entries, _LEDGER_COLUMNS, ledger.entries)
            days["ledger_entries"] = _days(map(itemgetter(_BOOKED_COLUMN), ledger.entries))
            if suspended:
                # What the triggers would have counted for the rows written.
                untimed = {"customers": len(customers.rows), "products": len(products)}
                await add_written_counts(connection, _written_counts(days, untimed))
        if connection.dialect.name == "postgresql":
            await _restart_sequences(connection)
        await _seed_roles(connection)
    if engine.dialect.name == "postgresql":
        await _analyze(engine, names)
    return SeedSummary(
        scale=scale,
        customers=len(customers.rows),
        products=len(products),
        orders=len(orders),
        order_items=item_count,
        events=event_count,
        ledger_entries=len(ledger.entries),
        roles=len(ROLE_DESCRIPTIONS),
        orders_missing_from_ledger=ledger.missing,
        ledger_amount_mismatches=ledger.amount_mismatches,
        ledger_large_amount_mismatches=ledger.large_amount_mismatches,
        ledger_booked_at_outliers=ledger.booked_at_outliers,
        ledger_entries_without_order=ledger.without_order,
        customers_without_country=without_country,
        duplicated_customer_emails=shared_emails,
        orders_total_out_of_range=out_of_range,
        stopped_channel_events_missing=events_missing,
        stopped_channel_last_event_at=None if last_stopped is None else _moment(last_stopped),
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


async def migrate_and_seed(url: str, scale: int = 1) -> SeedSummary:
    """The store at ``url`` migrated to the latest revision and seeded at ``scale``, through
    an engine of its own (what ``dataintel seed`` does, for a store named by its URL)."""
    engine = create_engine(Settings(database_url=url).store)
    try:
        await upgrade(engine)
        return await seed(engine, scale)
    finally:
        await engine.dispose()
