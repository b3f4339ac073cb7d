"""Quality checks against values computed independently in Python from the seeded rows.

Every expectation here is counted in Python from rows read with plain selects; the
service's SQL is never the reference. Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError
from dataintel.services.pagination import PageRequest
from dataintel.services.quality import (
    CheckSelection,
    QualityCatalogError,
    QualityResult,
    SqlQualityService,
    load_checks,
)
from dataintel.services.quality.catalog import build_checks
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.seed import (
    STOPPED_EVENTS_CHANNEL,
    STOPPED_EVENTS_GAP,
    WINDOW_END,
    SeedSummary,
    migrate_and_seed,
)
from tests.plugins.store import PostgresServer, SeededTemplate, sqlite_url

Row = Any


@dataclass(frozen=True, slots=True)
class Seeded:
    orders: list[Row]
    events: list[Row]
    customers: list[Row]
    ledger: list[Row]


@dataclass(frozen=True, slots=True)
class Store:
    url: str
    summary: SeedSummary
    rows: Seeded


async def read_seeded(url: str) -> Seeded:
    engine = create_engine(Settings(database_url=url).store)
    try:
        async with engine.connect() as connection:

            async def everything(table: sa.Table) -> list[Row]:
                return list((await connection.execute(sa.select(table))).all())

            return Seeded(
                await everything(tables.orders),
                await everything(tables.events),
                await everything(tables.customers),
                await everything(tables.ledger_entries),
            )
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def sqlite_store(seeded_sqlite: SeededTemplate, tmp_path_factory: pytest.TempPathFactory) -> Store:
    copy = tmp_path_factory.mktemp("quality") / "store.db"
    shutil.copyfile(seeded_sqlite.path, copy)
    url = sqlite_url(copy)
    return Store(url, seeded_sqlite.summary, asyncio.run(read_seeded(url)))


@pytest.fixture(scope="module")
def postgres_store(postgres_server: PostgresServer) -> Iterator[Store]:
    name = asyncio.run(postgres_server.create_database())
    url = postgres_server.url(name)
    try:
        summary = asyncio.run(migrate_and_seed(url))
        yield Store(url, summary, asyncio.run(read_seeded(url)))
    finally:
        asyncio.run(postgres_server.drop_database(name))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(request: pytest.FixtureRequest) -> Store:
    found: Store = request.getfixturevalue(f"{request.param}_store")
    return found


@pytest.fixture
async def engine(store: Store) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(database_url=store.url).store)
    try:
        yield engine
    finally:
        await engine.dispose()


async def run_one(engine: AsyncEngine, yaml_text: str, now: datetime | None = None) -> Any:
    checks = build_checks([(yaml_text, "test.yaml")])
    clock = (lambda: now) if now is not None else None
    service = (
        SqlQualityService(engine, checks, clock) if clock else SqlQualityService(engine, checks)
    )
    _run_id, results = await service.run(CheckSelection())
    (result,) = results
    return result.measurement


def check(body: str) -> str:
    return f"checks:\n  - {{id: c, description: d, {body}}}\n"


def top(counts: Counter[Any]) -> list[tuple[str, int]]:
    """Most frequent first, then by value; at most 20."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(str(value), count) for value, count in ordered[:20]]


def sample_of(measurement: Any) -> list[tuple[str, int]]:
    return [(item.value, item.count) for item in measurement.unexpected_sample]


# --- One test per check type --------------------------------------------------------------


async def test_not_null_counts_nulls_over_every_row_and_mostly_relaxes_it(
    store: Store, engine: AsyncEngine
) -> None:
    events = store.rows.events
    nulls = sum(1 for event in events if event.customer_id is None)
    assert 0 < nulls < len(events)
    share = nulls / len(events)
    result = await run_one(engine, check("dataset: events, type: not_null, column: customer_id"))
    assert result.status == "FAIL"
    assert (result.element_count, result.null_count) == (len(events), nulls)
    assert result.unexpected_count == nulls
    assert result.unexpected_percent == pytest.approx(share * 100)
    assert result.unexpected_sample == ()
    # mostly: the share of expected rows must reach it; just below passes, just above fails.
    expected_share = 1 - share
    loose = f"mostly: {expected_share - 0.001:.6f}"
    tight = f"mostly: {expected_share + 0.001:.6f}"
    body = "dataset: events, type: not_null, column: customer_id, "
    assert (await run_one(engine, check(body + loose))).status == "PASS"
    assert (await run_one(engine, check(body + tight))).status == "FAIL"
    warned = await run_one(engine, check(body + "severity: warn"))
    assert warned.status == "WARN"


async def test_unique_reports_rows_in_duplicated_groups_and_distinct_values(
    store: Store, engine: AsyncEngine
) -> None:
    counts = Counter(order.customer_id for order in store.rows.orders)
    duplicated = {value: n for value, n in counts.items() if n > 1}
    result = await run_one(engine, check("dataset: orders, type: unique, column: customer_id"))
    assert result.status == "FAIL"
    assert result.duplicated_values == len(duplicated) == result.observed_value
    assert result.unexpected_count == sum(duplicated.values())
    assert result.unexpected_percent == pytest.approx(
        sum(duplicated.values()) * 100 / len(store.rows.orders)
    )
    assert sample_of(result) == top(Counter(duplicated))
    ids = await run_one(engine, check("dataset: orders, type: unique, column: id"))
    assert (ids.status, ids.unexpected_count, ids.duplicated_values) == ("PASS", 0, 0)


async def test_unique_over_several_columns_skips_rows_with_a_null(
    store: Store, engine: AsyncEngine
) -> None:
    events = store.rows.events
    with_customer = [event for event in events if event.customer_id is not None]
    counts = Counter((event.customer_id, event.type) for event in with_customer)
    duplicated = {value: n for value, n in counts.items() if n > 1}
    body = "dataset: events, type: unique, columns: [customer_id, type]"
    result = await run_one(engine, check(body))
    assert result.null_count == len(events) - len(with_customer)
    assert result.duplicated_values == len(duplicated)
    assert result.unexpected_count == sum(duplicated.values())
    assert result.unexpected_percent == pytest.approx(
        sum(duplicated.values()) * 100 / len(with_customer)
    )
    expected = sorted(duplicated.items(), key=lambda item: (-item[1], item[0]))[:20]
    assert sample_of(result) == [(f"{key[0]}, {key[1]}", n) for key, n in expected]


async def test_between_is_inclusive_unless_strict(store: Store, engine: AsyncEngine) -> None:
    totals = sorted(order.total_cents for order in store.rows.orders)
    low, high = totals[10], totals[-10]
    body = f"dataset: orders, type: between, column: total_cents, min: {low}, max: {high}"
    inclusive = await run_one(engine, check(body))
    outside = [t for t in totals if t < low or t > high]
    assert inclusive.unexpected_count == len(outside)
    assert inclusive.unexpected_percent == pytest.approx(len(outside) * 100 / len(totals))
    assert sample_of(inclusive) == top(Counter(outside))
    strict = await run_one(engine, check(body + ", strict: true"))
    assert strict.unexpected_count == sum(1 for t in totals if t <= low or t >= high)
    assert strict.unexpected_count > inclusive.unexpected_count
    only_min = await run_one(
        engine, check(f"dataset: orders, type: between, column: total_cents, min: {low}")
    )
    assert only_min.unexpected_count == sum(1 for t in totals if t < low)


async def test_in_set_counts_values_outside_and_samples_the_most_frequent(
    store: Store, engine: AsyncEngine
) -> None:
    statuses = Counter(order.status for order in store.rows.orders)
    body = "dataset: orders, type: in_set, column: status, values: [paid, shipped]"
    result = await run_one(engine, check(body))
    others = Counter({s: n for s, n in statuses.items() if s not in {"paid", "shipped"}})
    assert result.unexpected_count == sum(others.values())
    assert sample_of(result) == top(others)


async def test_regex_searches_the_values_text(store: Store, engine: AsyncEngine) -> None:
    emails = [customer.email for customer in store.rows.customers]
    pattern = "^[a-m][a-z]*[.]"
    misses = Counter(email for email in emails if not re.search(pattern, email))
    assert 0 < sum(misses.values()) < len(emails)
    result = await run_one(
        engine, check(f'dataset: customers, type: regex, column: email, pattern: "{pattern}"')
    )
    assert result.unexpected_count == sum(misses.values())
    assert sample_of(result) == top(misses)[:20]
    totals = [order.total_cents for order in store.rows.orders]
    numbers = await run_one(
        engine, check('dataset: orders, type: regex, column: total_cents, pattern: "99$"')
    )
    assert numbers.unexpected_count == sum(1 for t in totals if not str(t).endswith("99"))


async def test_row_count_between_with_and_without_where(store: Store, engine: AsyncEngine) -> None:
    count = len(store.rows.customers)
    exact = f"dataset: customers, type: row_count_between, min: {count}, max: {count}"
    result = await run_one(engine, check(exact))
    assert (result.status, result.observed_value, result.element_count) == ("PASS", count, count)
    above = f"dataset: customers, type: row_count_between, min: {count + 1}"
    assert (await run_one(engine, check(above))).status == "FAIL"
    gold = sum(1 for customer in store.rows.customers if customer.tier == "gold")
    filtered = (
        f"""dataset: customers, type: row_count_between, max: {gold}, where: "tier = 'gold'" """
    )
    assert (await run_one(engine, check(filtered))).observed_value == gold


async def test_freshness_measures_the_age_of_the_latest_value(
    store: Store, engine: AsyncEngine
) -> None:
    latest = max(event.occurred_at for event in store.rows.events)
    body = (
        "dataset: events, type: freshness, column: occurred_at,"
        " warnAfterSeconds: 3600, failAfterSeconds: 86400"
    )
    fresh = await run_one(engine, check(body), now=latest + timedelta(minutes=30))
    assert (fresh.status, fresh.observed_value) == ("PASS", 1800)
    warned = await run_one(engine, check(body), now=latest + timedelta(hours=2))
    assert (warned.status, warned.observed_value) == ("WARN", 7200)
    failed = await run_one(engine, check(body), now=latest + timedelta(days=2))
    assert failed.status == "FAIL"
    empty = await run_one(engine, check(body + ', where: "1 = 0"'), now=latest)
    assert empty.status == "ERROR"
    assert "no rows" in empty.reason


async def test_referential_finds_the_seeded_orphan_entries(
    store: Store, engine: AsyncEngine
) -> None:
    order_ids = {order.id for order in store.rows.orders}
    orphans = Counter(e.order_id for e in store.rows.ledger if e.order_id not in order_ids)
    assert sum(orphans.values()) == store.summary.ledger_entries_without_order
    body = "dataset: ledger_entries, type: referential, column: order_id, references: orders.id"
    result = await run_one(engine, check(body))
    assert result.status == "FAIL"
    assert result.unexpected_count == sum(orphans.values())
    assert sample_of(result) == top(orphans)


async def test_the_built_in_checks_find_exactly_the_seeded_defects(
    store: Store, engine: AsyncEngine
) -> None:
    summary = store.summary
    assert summary.stopped_channel_last_event_at is not None
    demo_now = summary.stopped_channel_last_event_at + STOPPED_EVENTS_GAP
    service = SqlQualityService(engine, load_checks(), lambda: demo_now)
    wanted = (
        "customers_country_code",
        "customers_email_unique",
        "orders_total_in_range",
        "events_marketplace_fresh",
    )
    _run_id, results = await service.run(CheckSelection(check_ids=wanted))
    found = {result.check_id: result.measurement for result in results}

    country, emails = found["customers_country_code"], found["customers_email_unique"]
    totals, marketplace = found["orders_total_in_range"], found["events_marketplace_fresh"]
    assert (country.status, country.unexpected_count) == ("FAIL", summary.customers_without_country)
    assert sample_of(country) == [("", summary.customers_without_country)]
    assert emails.status == "FAIL"
    assert emails.duplicated_values == summary.duplicated_customer_emails
    assert emails.unexpected_count == 2 * summary.duplicated_customer_emails
    assert (totals.status, totals.unexpected_count) == ("FAIL", summary.orders_total_out_of_range)
    # The other channels run up to the window's end; the stopped one's age is the gap.
    assert (marketplace.status, marketplace.observed_value) == (
        "FAIL",
        (demo_now - summary.stopped_channel_last_event_at).total_seconds(),
    )
    assert summary.stopped_channel_last_event_at < WINDOW_END - STOPPED_EVENTS_GAP

    # The same counts from the rows, in Python.
    customers = store.rows.customers
    assert sum(customer.country == "" for customer in customers) == country.unexpected_count
    by_mailbox = Counter(customer.email.lower() for customer in customers)
    assert sum(count > 1 for count in by_mailbox.values()) == emails.duplicated_values
    assert sum(order.total_cents < 0 for order in store.rows.orders) == totals.unexpected_count
    marketplace_events = [e for e in store.rows.events if e.channel == STOPPED_EVENTS_CHANNEL]
    assert max(e.occurred_at for e in marketplace_events) == summary.stopped_channel_last_event_at
    assert max(e.occurred_at for e in store.rows.events) > WINDOW_END - STOPPED_EVENTS_GAP


# --- Edge cases ---------------------------------------------------------------------------


async def test_an_empty_dataset_passes_row_checks_with_no_percent(engine: AsyncEngine) -> None:
    for body in (
        'dataset: orders, type: not_null, column: customer_id, where: "1 = 0"',
        'dataset: orders, type: unique, column: customer_id, where: "1 = 0"',
        'dataset: orders, type: between, column: total_cents, min: 0, where: "1 = 0"',
    ):
        result = await run_one(engine, check(body))
        assert (result.status, result.element_count, result.unexpected_count) == ("PASS", 0, 0)
        assert result.unexpected_percent is None


async def test_an_all_null_column_has_nothing_unexpected(store: Store, engine: AsyncEngine) -> None:
    anonymous = sum(1 for event in store.rows.events if event.customer_id is None)
    where = 'where: "customer_id IS NULL"'
    for body in (
        f"dataset: events, type: between, column: customer_id, min: 5, max: 6, {where}",
        f"dataset: events, type: in_set, column: customer_id, values: [1], {where}",
        f"dataset: events, type: referential, column: customer_id, references: customers.id,"
        f" {where}",
    ):
        result = await run_one(engine, check(body))
        assert (result.status, result.null_count, result.unexpected_count) == (
            "PASS",
            anonymous,
            0,
        )
        assert result.unexpected_percent is None
    not_null = await run_one(
        engine, check(f"dataset: events, type: not_null, column: customer_id, {where}")
    )
    assert (not_null.status, not_null.unexpected_percent) == ("FAIL", 100)


async def test_a_check_that_errors_does_not_stop_the_run(engine: AsyncEngine) -> None:
    checks = build_checks(
        [
            (
                """
checks:
  - {id: broken, description: d, dataset: orders, type: not_null, column: id,
     where: "no_such_column = 1"}
  - {id: fine, description: d, dataset: orders, type: not_null, column: id}
""",
                "test.yaml",
            )
        ]
    )
    service = SqlQualityService(engine, checks)
    _run_id, results = await service.run(CheckSelection())
    broken, fine = results
    assert broken.status == "ERROR"
    assert broken.measurement.reason is not None
    assert "no_such_column" in broken.measurement.reason
    assert fine.status == "PASS"


# --- Runs, selection, history and health -------------------------------------------------


async def test_history_latest_and_dataset_health(engine: AsyncEngine) -> None:
    service = SqlQualityService(engine, load_checks())
    run_id, first = await service.run(CheckSelection(dataset="ledger_entries"))
    assert {result.check_id for result in first} == {
        "ledger_entry_ref_unique",
        "ledger_entries_have_orders",
    }
    assert {result.run_id for result in first} == {run_id}
    _second_id, second = await service.run(CheckSelection(check_ids=("ledger_entry_ref_unique",)))
    page = await service.history("ledger_entry_ref_unique", PageRequest(1))
    assert [r.id for r in page.items] == [second[0].id]
    assert page.has_next_page
    older = await service.history("ledger_entry_ref_unique", PageRequest(5, (second[0].id,)))
    stored: QualityResult = older.items[0]
    assert stored.measurement == first[0].measurement
    assert await service.count_history("ledger_entry_ref_unique") >= 2
    latest = await service.latest(["ledger_entries_have_orders", "events_fresh"])
    assert latest[0] is not None
    assert latest[0].status == "WARN"  # the seeded orphans, at warn severity
    health = {item.dataset: item for item in await service.dataset_health()}
    ledger = health["ledger_entries"]
    assert (ledger.checks, ledger.worst, ledger.never_run) == (2, "WARN", 0)
    assert ledger.status_counts["PASS"] == 1


async def test_selection_by_tag_and_mistakes(engine: AsyncEngine) -> None:
    service = SqlQualityService(engine, load_checks())
    finance = service.select(CheckSelection(tag="finance"))
    assert all("finance" in check.tags for check in finance)
    assert {check.dataset for check in finance} == {"orders", "ledger_entries"}
    with pytest.raises(BadUserInputError, match="Unknown quality checks: nope"):
        service.select(CheckSelection(check_ids=("nope",)))
    with pytest.raises(BadUserInputError, match="No quality check"):
        service.select(CheckSelection(dataset="orders", tag="events"))


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("dataset: users, type: not_null, column: id", "dataset 'users' is not one of"),
        ("dataset: orders, type: not_null, column: nope", "has no column 'nope'"),
        ("dataset: orders, type: between, column: total_cents", "give min, max or both"),
        ("dataset: orders, type: between, column: id, min: 2, max: 1", "min is above max"),
        ("dataset: orders, type: in_set, column: status", "in_set needs values"),
        ("dataset: orders, type: freshness, column: id, failAfterSeconds: 1", "time column"),
        ("dataset: orders, type: freshness, column: placed_at", "warnAfterSeconds"),
        ("dataset: orders, type: referential, column: id, references: x.y", "references 'x.y'"),
        ("dataset: orders, type: row_count_between, column: id, min: 1", "takes no column"),
        ("dataset: orders, type: row_count_between, min: 1, mostly: 0.5", "mostly applies"),
        ("dataset: orders, type: not_null, column: id, mostly: 2", "mostly"),
        ("dataset: orders, type: unique", "unique needs column"),
        ("dataset: orders, type: regex, column: status", "regex needs a pattern"),
        ('dataset: orders, type: regex, column: status, pattern: "("', "does not compile"),
        ('dataset: orders, type: not_null, column: id, pattern: "a"', "only regex checks"),
    ],
)
def test_a_bad_check_is_refused_with_where_it_is(body: str, fragment: str) -> None:
    with pytest.raises(QualityCatalogError, match=fragment):
        build_checks([(check(body), "bad.yaml")])


def test_a_check_declared_twice_in_one_file_is_refused_and_a_later_file_replaces_it() -> None:
    body = "dataset: orders, type: not_null, column: id"
    with pytest.raises(QualityCatalogError, match=r"bad\.yaml: check 'c' is declared twice"):
        build_checks([(check(body) + check(body).removeprefix("checks:\n"), "bad.yaml")])
    replaced = build_checks([(check(body), "a.yaml"), (check(body + ", mostly: 0.5"), "b.yaml")])
    assert replaced["c"].mostly == 0.5
