"""Reconciliation against the seed's counted discrepancies and small hand-made datasets.

The built-in comparison must report exactly what the seed says it planted; the expected
row counts are computed here in Python from plain selects. Small SQL query datasets cover
the edge cases (NULL keys, duplicates, NULL against NULL, tolerances at their boundary,
relative tolerance per reference side, composite keys, a comparison that cannot run). Every
test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError, NotFoundError
from dataintel.services.pagination import PageRequest
from dataintel.services.reconciliation import (
    ComparisonCatalogError,
    ReconcileOverrides,
    SqlReconciliationService,
    ToleranceOverride,
    load_comparisons,
)
from dataintel.services.reconciliation.catalog import build_comparisons
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.seed import SeedSummary, migrate_and_seed
from tests.plugins.store import PostgresServer, SeededTemplate, sqlite_url

BUILT_IN = "orders_vs_ledger"


@dataclass(frozen=True, slots=True)
class Store:
    dialect: str
    url: str
    summary: SeedSummary


@pytest.fixture(scope="module")
def sqlite_store(seeded_sqlite: SeededTemplate, tmp_path_factory: pytest.TempPathFactory) -> Store:
    copy = tmp_path_factory.mktemp("reconciliation") / "store.db"
    shutil.copyfile(seeded_sqlite.path, copy)
    return Store("sqlite", sqlite_url(copy), seeded_sqlite.summary)


@pytest.fixture(scope="module")
def postgres_store(postgres_server: PostgresServer) -> Iterator[Store]:
    name = asyncio.run(postgres_server.create_database())
    url = postgres_server.url(name)
    try:
        summary = asyncio.run(migrate_and_seed(url))
        yield Store("postgres", url, summary)
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


def service_of(engine: AsyncEngine, yaml_text: str | None = None) -> SqlReconciliationService:
    comparisons = load_comparisons()
    if yaml_text is not None:
        comparisons = build_comparisons([(yaml_text, "test.yaml")])
    return SqlReconciliationService(engine, comparisons)


# --- The built-in comparison on the seeded data ------------------------------------------


async def test_the_built_in_comparison_reports_exactly_the_seeded_discrepancies(
    store: Store, engine: AsyncEngine
) -> None:
    summary = store.summary
    async with engine.connect() as connection:
        statuses = (await connection.execute(sa.select(tables.orders.c.status))).scalars().all()
        ledger_rows = (
            await connection.execute(sa.select(sa.func.count()).select_from(tables.ledger_entries))
        ).scalar_one()
    not_cancelled = sum(1 for status in statuses if status != "cancelled")

    run = await service_of(engine).run(BUILT_IN, ReconcileOverrides(), "tester")

    assert run.status == "DISCREPANCIES"
    assert run.error is None
    report = run.report
    assert report is not None
    assert report.left.rows == not_cancelled
    assert report.right.rows == ledger_rows == summary.ledger_entries
    assert report.only_left == summary.orders_missing_from_ledger
    assert report.only_right == summary.ledger_entries_without_order
    columns = {column.name: column for column in report.columns}
    amount, booked = columns["amount_cents"], columns["booked_at"]
    large = summary.ledger_large_amount_mismatches
    assert 0 < large < summary.ledger_amount_mismatches
    assert amount.mismatch_count == large
    assert amount.within_tolerance_count == summary.ledger_amount_mismatches - large
    assert booked.mismatch_count == summary.ledger_booked_at_outliers
    assert columns["currency"].mismatch_count == 0
    assert report.mismatched == large + summary.ledger_booked_at_outliers
    paired = not_cancelled - summary.orders_missing_from_ledger
    assert report.matched == paired - report.mismatched
    assert report.match_rate == pytest.approx(report.matched / not_cancelled)
    for side in (report.left, report.right):
        assert (side.null_key_rows, side.duplicate_keys, side.duplicate_rows) == (0, 0, 0)
        assert side.blocked_rows == 0
    assert report.left.only_columns == ("customer_id", "channel")
    assert report.right.only_columns == ("entry_ref",)
    # The booking-time outliers were shifted 3 to 30 days; the amounts by up to $50.
    assert booked.max_abs_diff is not None
    assert 3 * 86400 <= booked.max_abs_diff <= 30 * 86400
    assert amount.max_abs_diff is not None
    assert 100 <= amount.max_abs_diff <= 5000


async def test_samples_are_capped_ordered_by_key_and_show_both_sides(
    store: Store, engine: AsyncEngine
) -> None:
    service = service_of(engine)
    run = await service.run(BUILT_IN, ReconcileOverrides(sample_size=3), "tester")
    assert run.report is not None
    by_category: dict[str, list[tuple[str, ...]]] = {}
    for sample in run.report.samples:
        by_category.setdefault(sample.category, []).append(sample.key)
    assert set(by_category) == {"only_left", "only_right", "mismatched"}
    for keys in by_category.values():
        assert len(keys) == 3
        assert keys == sorted(keys, key=lambda key: int(key[0]))
    only_right = [s for s in run.report.samples if s.category == "only_right"]
    assert all(int(s.key[0]) > 900_000_000 for s in only_right)
    assert all((s.left_rows, s.right_rows) == (0, 1) for s in only_right)
    assert all(v.left is None and v.right is not None for s in only_right for v in s.values)
    mismatched = [s for s in run.report.samples if s.category == "mismatched"]
    for sample in mismatched:
        values = {value.column: value for value in sample.values}
        assert values["amount_cents"].left is not None
        assert values["amount_cents"].right is not None


async def test_identical_inputs_give_identical_reports_and_history_keeps_each_run(
    store: Store, engine: AsyncEngine
) -> None:
    service = service_of(engine)
    before = await service.count_history(BUILT_IN)
    first = await service.run(BUILT_IN, ReconcileOverrides(), "tester")
    second = await service.run(BUILT_IN, ReconcileOverrides(), "tester")
    assert first.report == second.report
    assert second.id > first.id
    assert await service.count_history(BUILT_IN) == before + 2
    (latest,) = await service.latest([BUILT_IN])
    assert latest == second
    page = await service.history(BUILT_IN, PageRequest(1))
    assert [run.id for run in page.items] == [second.id]
    assert page.has_next_page
    after = await service.history(BUILT_IN, PageRequest(1, (second.id,)))
    assert [run.id for run in after.items] == [first.id]
    # A stored report reads back equal to the one the run returned.
    assert after.items[0].report == first.report


async def test_overrides_change_one_run_only(store: Store, engine: AsyncEngine) -> None:
    service = service_of(engine)
    loose = ReconcileOverrides(
        tolerances=(ToleranceOverride("amount_cents", abs_tolerance=5000),), sample_size=0
    )
    run = await service.run(BUILT_IN, loose, "tester")
    assert run.report is not None
    amount = next(c for c in run.report.columns if c.name == "amount_cents")
    assert (amount.mismatch_count, amount.abs_tolerance) == (0, 5000)
    assert amount.within_tolerance_count == store.summary.ledger_amount_mismatches
    assert run.report.samples == ()
    declared = service.comparisons[BUILT_IN].columns[0]
    assert declared.abs_tolerance == 10


async def test_unknown_comparisons_and_bad_overrides_are_refused(engine: AsyncEngine) -> None:
    service = service_of(engine)
    with pytest.raises(NotFoundError, match="orders_vs_ledger"):
        await service.run("nope", ReconcileOverrides(), "tester")
    for overrides in (
        ReconcileOverrides(tolerances=(ToleranceOverride("no_such_column", 1),)),
        ReconcileOverrides(tolerances=(ToleranceOverride("currency", 1),)),
        ReconcileOverrides(tolerances=(ToleranceOverride("amount_cents", -1),)),
        ReconcileOverrides(sample_size=101),
    ):
        with pytest.raises(BadUserInputError):
            await service.run(BUILT_IN, overrides, "tester")


# --- Edge cases on small query datasets ---------------------------------------------------

# Left: id 1..7 plus a NULL key and a duplicated 8; right: mostly the same ids.
LEFT_ROWS = """
SELECT 1 AS id, CAST(100 AS INTEGER) AS amount, 'a' AS label
UNION ALL SELECT 2, 100, 'b'
UNION ALL SELECT 3, CAST(NULL AS INTEGER), 'c'
UNION ALL SELECT 4, CAST(NULL AS INTEGER), 'd'
UNION ALL SELECT 5, 200, CAST(NULL AS VARCHAR(8))
UNION ALL SELECT 6, 1000, 'f'
UNION ALL SELECT 7, 50, 'g'
UNION ALL SELECT CAST(NULL AS INTEGER), 1, 'x'
UNION ALL SELECT 8, 1, 'y'
UNION ALL SELECT 8, 2, 'z'
UNION ALL SELECT 9, 1, 'only'
"""
RIGHT_ROWS = """
SELECT 1 AS id, CAST(100 AS INTEGER) AS amount, 'a' AS label
UNION ALL SELECT 2, 105, 'b'
UNION ALL SELECT 3, CAST(NULL AS INTEGER), 'c'
UNION ALL SELECT 4, 7, 'd'
UNION ALL SELECT 5, 200, 'e'
UNION ALL SELECT 6, 1100, 'f'
UNION ALL SELECT 7, 56, 'g'
UNION ALL SELECT 8, 1, 'y'
UNION ALL SELECT 10, 1, 'dup'
UNION ALL SELECT 10, 1, 'dup'
UNION ALL SELECT 11, 1, 'only'
UNION ALL SELECT CAST(NULL AS INTEGER), 2, 'x'
UNION ALL SELECT CAST(NULL AS INTEGER), 3, 'x'
"""


def edge_yaml(reference: str = "left") -> str:
    def indented(sql: str) -> str:
        return "\n".join("        " + line for line in sql.strip().splitlines())

    return f"""
comparisons:
  - id: edges
    description: Hand-made rows with every edge case.
    left:
      query: |
{indented(LEFT_ROWS)}
    right:
      query: |
{indented(RIGHT_ROWS)}
    keys: [{{column: id, type: number}}]
    reference: {reference}
    columns:
      - {{column: amount, type: number, absTol: 5, relTol: 0.1}}
      - {{column: label, type: text}}
    sampleSize: 5
"""


async def test_null_keys_duplicates_and_nulls_are_counted_never_paired(
    engine: AsyncEngine,
) -> None:
    run = await service_of(engine, edge_yaml()).run("edges", ReconcileOverrides(), "tester")
    assert run.status == "DISCREPANCIES", run.error
    report = run.report
    assert report is not None
    assert (report.left.rows, report.right.rows) == (11, 13)
    assert (report.left.null_key_rows, report.right.null_key_rows) == (1, 2)
    assert (report.left.duplicate_keys, report.left.duplicate_rows) == (1, 2)
    assert (report.right.duplicate_keys, report.right.duplicate_rows) == (1, 2)
    # Right's 8 is unique there, but the left holds 8 twice: it is not paired with either.
    assert (report.left.blocked_rows, report.right.blocked_rows) == (0, 1)
    # 9 | 11: the right's 10 is a duplicate, not a key only the right has.
    assert (report.only_left, report.only_right) == (1, 1)
    amount, label = report.columns
    # Paired: 1..7. amount, allowed 5 + 10% of the left value:
    # 1 equal; 2 |5| <= 15 within; 3 NULL=NULL; 4 NULL vs 7; 5 equal; 6 |100| <= 105 within;
    # 7 |6| <= 10 within.
    assert (amount.mismatch_count, amount.null_diff, amount.within_tolerance_count) == (1, 1, 3)
    assert amount.max_abs_diff == 100
    # label: 5 has NULL against 'e'.
    assert (label.mismatch_count, label.null_diff, label.within_tolerance_count) == (1, 1, 0)
    assert report.mismatched == 2  # keys 4 and 5
    assert report.matched == 5
    assert report.match_rate == pytest.approx(5 / 13)
    sides = (report.left, report.right)
    for side, only in zip(sides, (report.only_left, report.only_right), strict=True):
        unpaired = side.null_key_rows + side.duplicate_rows + side.blocked_rows
        assert side.rows == unpaired + only + report.matched + report.mismatched
    categories = [(sample.category, sample.key) for sample in report.samples]
    assert categories == [
        ("only_left", ("9",)),
        ("only_right", ("11",)),
        ("mismatched", ("4",)),
        ("mismatched", ("5",)),
        ("duplicate_left", ("8",)),
        ("duplicate_right", ("10",)),
    ]
    duplicate_left = report.samples[4]
    assert (duplicate_left.left_rows, duplicate_left.right_rows) == (2, 1)


async def test_relative_tolerance_follows_the_reference_side(engine: AsyncEngine) -> None:
    tight = ReconcileOverrides(tolerances=(ToleranceOverride("amount", 0, 0.11),))
    by_left = await service_of(engine, edge_yaml("left")).run("edges", tight, "t")
    by_right = await service_of(engine, edge_yaml("right")).run("edges", tight, "t")
    assert by_left.report is not None
    assert by_right.report is not None
    # Key 7: 6 > 0.11*50 = 5.5 (left) but 6 <= 0.11*56 = 6.16 (right).
    # Key 2: 5 <= 11 and 5 <= 11.55 both; key 6: 100 <= 110 and 100 <= 121 both.
    left_amount, right_amount = by_left.report.columns[0], by_right.report.columns[0]
    assert left_amount.mismatch_count == right_amount.mismatch_count + 1


async def test_the_boundary_of_a_tolerance_is_within_it(engine: AsyncEngine) -> None:
    exactly = ReconcileOverrides(tolerances=(ToleranceOverride("amount", 100, 0),))
    run = await service_of(engine, edge_yaml()).run("edges", exactly, "t")
    assert run.report is not None
    amount = run.report.columns[0]
    assert (amount.mismatch_count, amount.within_tolerance_count) == (1, 3)  # 1: the NULL
    below = ReconcileOverrides(tolerances=(ToleranceOverride("amount", 99.5, 0),))
    run = await service_of(engine, edge_yaml()).run("edges", below, "t")
    assert run.report is not None
    assert run.report.columns[0].mismatch_count == 2


async def test_empty_sides_agree_with_no_match_rate(engine: AsyncEngine) -> None:
    text = """
comparisons:
  - id: nothing
    description: Two empty sides.
    left: {table: orders, where: "1 = 0"}
    right: {table: ledger_entries, where: "1 = 0"}
    keys: [{left: id, right: order_id}]
    columns: [{left: total_cents, right: amount_cents}]
"""
    run = await service_of(engine, text).run("nothing", ReconcileOverrides(), "t")
    assert run.status == "OK"
    assert run.report is not None
    assert (run.report.left.rows, run.report.right.rows, run.report.matched) == (0, 0, 0)
    assert run.report.match_rate is None
    assert run.report.columns[0].max_abs_diff is None


async def test_composite_keys_pair_on_every_part(engine: AsyncEngine) -> None:
    text = """
comparisons:
  - id: composite
    description: Two-part keys.
    left:
      query: "SELECT 1 AS a, 'x' AS b, 10 AS v UNION ALL SELECT 1, 'y', 20"
    right:
      query: "SELECT 1 AS a, 'x' AS b, 10 AS v UNION ALL SELECT 2, 'y', 20"
    keys: [{column: a, type: number}, {column: b, type: text}]
    columns: [{column: v, type: number}]
"""
    run = await service_of(engine, text).run("composite", ReconcileOverrides(), "t")
    assert run.report is not None
    assert (run.report.matched, run.report.only_left, run.report.only_right) == (1, 1, 1)
    assert [s.key for s in run.report.samples] == [("1", "y"), ("2", "y")]


async def test_a_comparison_that_cannot_run_is_an_error_report(engine: AsyncEngine) -> None:
    text = """
comparisons:
  - id: broken
    description: Its query names a column that does not exist.
    left: {query: "SELECT no_such_column AS id, 1 AS v FROM orders"}
    right: {table: ledger_entries}
    keys: [{left: id, right: order_id}]
    columns: [{left: v, right: amount_cents}]
"""
    service = service_of(engine, text)
    run = await service.run("broken", ReconcileOverrides(), "t")
    assert run.status == "ERROR"
    assert run.report is None
    assert run.error is not None
    assert "no_such_column" in run.error
    (latest,) = await service.latest(["broken"])
    assert latest is not None
    assert latest.status == "ERROR"
    assert latest.error == run.error


# --- Declarations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "comparisons: [{id: x, description: d, left: {table: users}, right: {table: orders},"
            " keys: [{column: id}]}]",
            "table 'users' is not one of",
        ),
        (
            "comparisons: [{id: x, description: d, left: {table: orders}, right: {table: orders},"
            " keys: [{column: nope}]}]",
            "has no column 'nope'",
        ),
        (
            "comparisons: [{id: x, description: d, left: {table: orders}, right: {table: orders},"
            " keys: [{column: id}], columns: [{column: status, absTol: 1}]}]",
            "text column",
        ),
        (
            "comparisons: [{id: x, description: d, left: {query: 'SELECT 1 AS id'},"
            " right: {query: 'SELECT 1 AS id'}, keys: [{column: id}]}]",
            "say its type",
        ),
        (
            "comparisons: [{id: x, description: d, left: {table: orders}, right: {table: orders},"
            " keys: [{column: id}], columns: [{column: placed_at}, {column: placed_at}]}]",
            "compared twice",
        ),
        (
            "comparisons: [{id: x, description: d, left: {table: orders}, right: {table: orders},"
            " keys: [{column: id}], columns: [{left: id, right: placed_at}]}]",
            "different kinds",
        ),
        (
            "comparisons: [{id: x, description: d, left: {table: orders, query: 'SELECT 1'},"
            " right: {table: orders}, keys: [{column: id}]}]",
            "either table",
        ),
        (
            "comparisons: [{id: x, description: d, left: {table: orders}, right: {table: orders},"
            " keys: [{column: id}]}, {id: x, description: d, left: {table: orders},"
            " right: {table: orders}, keys: [{column: id}]}]",
            "declared twice",
        ),
        ("comparisons: [{id: X, description: d}]", "comparisons.0.id"),
        ("comparisons: [", "not valid YAML"),
    ],
)
def test_a_bad_declaration_is_refused_with_where_it_is(text: str, fragment: str) -> None:
    with pytest.raises(ComparisonCatalogError, match=fragment.replace("(", r"\(")):
        build_comparisons([(text, "bad.yaml")])


def test_an_operator_file_adds_comparisons_and_replaces_by_id(tmp_path: Path) -> None:
    path = tmp_path / "comparisons.yaml"
    path.write_text(
        """
comparisons:
  - id: orders_vs_ledger
    description: Stricter amounts.
    left: {table: orders}
    right: {table: ledger_entries}
    keys: [{left: id, right: order_id}]
    columns: [{left: total_cents, right: amount_cents}]
  - id: items_vs_orders
    description: Another one.
    left: {table: order_items}
    right: {table: orders}
    keys: [{left: order_id, right: id}]
"""
    )
    comparisons = load_comparisons(path)
    assert list(comparisons) == [BUILT_IN, "items_vs_orders"]
    assert comparisons[BUILT_IN].description == "Stricter amounts."
    assert comparisons[BUILT_IN].columns[0].abs_tolerance == 0
    with pytest.raises(ComparisonCatalogError, match="cannot read"):
        load_comparisons(tmp_path / "missing.yaml")


def test_the_built_in_comparison_is_declared_as_documented() -> None:
    comparison = load_comparisons()[BUILT_IN]
    assert comparison.left.table == "orders"
    assert comparison.left.where == "status <> 'cancelled'"
    assert comparison.right.table == "ledger_entries"
    columns = {column.name: column for column in comparison.columns}
    assert columns["amount_cents"].abs_tolerance == 10
    assert columns["booked_at"].kind == "time"
    assert columns["booked_at"].abs_tolerance == 86400
