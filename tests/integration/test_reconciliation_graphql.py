"""Reconciliation through the real app: run, list with the last report, history, denials."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataintel.app import create_app
from dataintel.services.reconciliation import ComparisonCatalogError
from dataintel.store.seed import SeedSummary
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.cli import clean_environment, run_dataintel
from tests.plugins.graphql import post
from tests.plugins.store import SeededTemplate

RECONCILE = """
mutation Reconcile($id: ID!, $overrides: ReconcileOverridesInput) {
  reconcile(comparisonId: $id, overrides: $overrides) {
    id comparisonId status error requestedBy durationMs
    leftRows rightRows onlyLeft onlyRight matched mismatched matchRate
    left { rows nullKeyRows duplicateKeys duplicateRows blockedRows onlyColumns }
    right { rows onlyColumns }
    columns { name kind absTol relTol mismatchCount withinToleranceCount nullDiff maxAbsDiff }
    samples(category: MISMATCHED) { category key leftRows rightRows values { column left right } }
    all: samples { category }
  }
}
"""
LIST = """
{
  reconciliations {
    id databaseId description reference sampleSize
    left { table where query } right { table }
    keys { left right }
    columns { name left right kind absTol relTol }
    lastReport { id status mismatched }
  }
}
"""
HISTORY = """
query History($after: String) {
  reconciliation(id: "orders_vs_ledger") {
    history(first: 2, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } nodes { id status }
    }
  }
}
"""
BACKWARDS = """
query Backwards($id: ID!, $before: String) {
  reconciliation(id: $id) {
    history(last: 2, before: $before) {
      pageInfo { hasPreviousPage startCursor } nodes { id databaseId }
    }
  }
  node(id: $id) { __typename id ... on Reconciliation { databaseId } }
}
"""


async def test_reconcile_reports_the_seeded_discrepancies_and_lists_the_last_run(
    make_settings: SettingsFactory, seeded_sqlite: SeededTemplate
) -> None:
    summary: SeedSummary = seeded_sqlite.summary
    async with serving(create_app(make_settings())) as client:
        before = await post(client, LIST)
        assert "errors" not in before, before
        (listed,) = before["data"]["reconciliations"]
        assert listed["databaseId"] == "orders_vs_ledger"
        assert listed["lastReport"] is None
        assert listed["left"] == {
            "table": "orders",
            "where": "status <> 'cancelled'",
            "query": None,
        }
        assert listed["keys"] == [{"left": "id", "right": "order_id"}]

        body = await post(client, RECONCILE, id="orders_vs_ledger")
        assert "errors" not in body, body
        report = body["data"]["reconcile"]
        assert report["status"] == "DISCREPANCIES"
        assert report["requestedBy"] == "anonymous"
        assert report["onlyLeft"] == summary.orders_missing_from_ledger
        assert report["onlyRight"] == summary.ledger_entries_without_order
        large = summary.ledger_large_amount_mismatches
        assert report["mismatched"] == large + summary.ledger_booked_at_outliers
        columns = {column["name"]: column for column in report["columns"]}
        assert columns["amount_cents"]["mismatchCount"] == large
        assert columns["booked_at"]["mismatchCount"] == summary.ledger_booked_at_outliers
        assert columns["booked_at"]["kind"] == "TIME"
        assert report["matchRate"] == pytest.approx(report["matched"] / report["leftRows"])
        assert report["right"]["onlyColumns"] == ["entry_ref"]
        assert 0 < len(report["samples"]) <= 10
        assert {sample["category"] for sample in report["samples"]} == {"MISMATCHED"}
        assert {sample["category"] for sample in report["all"]} == {
            "ONLY_LEFT",
            "ONLY_RIGHT",
            "MISMATCHED",
        }

        after = await post(client, LIST)
        last = after["data"]["reconciliations"][0]["lastReport"]
        assert last == {
            "id": report["id"],
            "status": "DISCREPANCIES",
            "mismatched": report["mismatched"],
        }


async def test_history_pages_newest_first(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings())) as client:
        ids = []
        for _ in range(3):
            body = await post(client, RECONCILE, id="orders_vs_ledger", overrides={"sampleSize": 0})
            ids.append(body["data"]["reconcile"]["id"])
        first = (await post(client, HISTORY))["data"]["reconciliation"]["history"]
        assert first["totalCount"] == 3
        assert [node["id"] for node in first["nodes"]] == [ids[2], ids[1]]
        assert first["pageInfo"]["hasNextPage"] is True
        cursor = first["pageInfo"]["endCursor"]
        second = (await post(client, HISTORY, after=cursor))["data"]["reconciliation"]["history"]
        assert [node["id"] for node in second["nodes"]] == [ids[0]]
        assert second["pageInfo"]["hasNextPage"] is False

        listed = (await post(client, LIST))["data"]["reconciliations"][0]
        back = (await post(client, BACKWARDS, id=listed["id"]))["data"]
        assert back["node"] == {
            "__typename": "Reconciliation",
            "id": listed["id"],
            "databaseId": "orders_vs_ledger",
        }
        oldest = back["reconciliation"]["history"]
        assert [node["id"] for node in oldest["nodes"]] == [ids[1], ids[0]]
        assert oldest["pageInfo"]["hasPreviousPage"] is True
        cursor = oldest["pageInfo"]["startCursor"]
        newest = await post(client, BACKWARDS, id="orders_vs_ledger", before=cursor)
        newest_page = newest["data"]["reconciliation"]["history"]
        assert [node["id"] for node in newest_page["nodes"]] == [ids[2]]
        assert newest_page["pageInfo"]["hasPreviousPage"] is False
        run_node = (
            "query Run($id: ID!) { node(id: $id) { ... on ReconciliationReport { databaseId } } }"
        )
        run = await post(client, run_node, id=ids[0])
        assert isinstance(run["data"]["node"]["databaseId"], int)


async def test_mistakes_are_typed_errors_and_a_viewer_is_denied(
    make_settings: SettingsFactory,
) -> None:
    async with serving(create_app(make_settings())) as client:
        unknown = await post(client, RECONCILE, id="nope")
        assert unknown["data"]["reconcile"] is None
        assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        overrides = {"tolerances": [{"column": "no_such", "absTol": 1}]}
        bad = await post(client, RECONCILE, id="orders_vs_ledger", overrides=overrides)
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        missing = await post(client, '{ reconciliation(id: "nope") { id } }')
        assert missing["data"]["reconciliation"] is None
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    async with serving(create_app(make_settings(anonymous_roles=["viewer"]))) as client:
        denied = await post(client, RECONCILE, id="orders_vs_ledger")
        assert denied["data"]["reconcile"] is None
        # Anonymous without the role: signing in could help (the RBAC matrix covers FORBIDDEN).
        assert denied["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_operator_comparison_that_cannot_run_is_an_error_report(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "comparisons.yaml"
    path.write_text(
        """
comparisons:
  - id: broken
    description: Its filter names a column the table lacks.
    left: {table: orders, where: "no_such_column = 1"}
    right: {table: ledger_entries}
    keys: [{left: id, right: order_id}]
"""
    )
    settings = make_settings(reconciliation_comparisons_path=path)
    async with serving(create_app(settings)) as client:
        body = await post(client, RECONCILE, id="broken")
        assert "errors" not in body, body
        report = body["data"]["reconcile"]
        assert report["status"] == "ERROR"
        assert "no_such_column" in report["error"]
        assert report["matched"] is None
        assert report["columns"] == []
        # The store is fine: the built-in comparison still runs in the same app.
        fine = await post(client, RECONCILE, id="orders_vs_ledger", overrides={"sampleSize": 0})
        assert fine["data"]["reconcile"]["status"] == "DISCREPANCIES"


async def test_a_bad_comparisons_file_stops_the_app(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "comparisons.yaml"
    path.write_text("comparisons: [{id: x}]")
    app = create_app(make_settings(reconciliation_comparisons_path=path))
    with pytest.raises(ComparisonCatalogError, match=r"comparisons\.0\.description"):
        async with serving(app):
            pass


def test_the_cli_prints_a_report_and_exits_non_zero_on_discrepancies(
    seeded_sqlite_url: str, seeded_sqlite: SeededTemplate, tmp_path: Path
) -> None:
    summary = seeded_sqlite.summary
    environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
    result = run_dataintel(["reconcile", "run", "--sample-size", "1"], tmp_path, environment)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("orders_vs_ledger: DISCREPANCIES (run 1,")
    mismatched = summary.ledger_large_amount_mismatches + summary.ledger_booked_at_outliers
    assert f"mismatched {mismatched}, only left {summary.orders_missing_from_ledger}," in lines[1]
    assert f"only right {summary.ledger_entries_without_order};" in lines[1]
    assert any(line.startswith("  column amount_cents") for line in lines)
    assert sum(line.startswith("  sample ") for line in lines) == 3

    unknown = run_dataintel(["reconcile", "run", "nope"], tmp_path, environment)
    assert unknown.returncode == 1
    assert "there is no comparison 'nope'" in unknown.stderr


def test_the_cli_exits_zero_when_the_sides_agree(seeded_sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "comparisons.yaml"
    path.write_text(
        """
comparisons:
  - id: orders_vs_orders
    description: A table against itself agrees.
    left: {table: orders}
    right: {table: orders}
    keys: [{column: id}]
    columns: [{column: total_cents}]
"""
    )
    environment = clean_environment(
        DATAINTEL_DATABASE_URL=seeded_sqlite_url,
        DATAINTEL_RECONCILIATION_COMPARISONS_PATH=str(path),
    )
    result = run_dataintel(["reconcile", "run", "orders_vs_orders"], tmp_path, environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("orders_vs_orders: OK")
