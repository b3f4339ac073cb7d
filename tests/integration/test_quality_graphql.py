"""Quality checks through the real app and the CLI: run, latest result, history, health."""

from __future__ import annotations

from pathlib import Path

from dataintel.app import create_app
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.cli import clean_environment, run_dataintel
from tests.plugins.graphql import post
from tests.plugins.store import SeededTemplate

RUN = """
mutation Run($input: RunQualityChecksInput) {
  runQualityChecks(input: $input) {
    id passed
    results {
      id runId checkId dataset status reason observedValue elementCount nullCount
      unexpectedCount unexpectedPercent duplicatedValues unexpectedSample { value count }
      startedAt durationMs
    }
  }
}
"""
CHECKS = """
{
  qualityChecks {
    id databaseId dataset type severity tags columns mostly latestResult { id status }
  }
  datasetHealth { dataset checks neverRun status counts { status count } }
}
"""
HISTORY = """
query History($after: String) {
  qualityCheck(id: "ledger_entries_have_orders") {
    history(first: 1, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } nodes { id status }
    }
  }
}
"""
OLDEST = """
query Oldest($id: ID!, $before: String) {
  qualityCheck(id: $id) {
    id databaseId
    history(last: 1, before: $before) {
      pageInfo { hasPreviousPage hasNextPage startCursor } nodes { id databaseId }
    }
  }
}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on QualityCheck { databaseId latestResult { id } }
    ... on QualityResult { checkId status }
  }
}
"""


async def test_run_by_dataset_then_read_latest_history_and_health(
    make_settings: SettingsFactory, seeded_sqlite: SeededTemplate
) -> None:
    orphans = seeded_sqlite.summary.ledger_entries_without_order
    async with serving(create_app(make_settings())) as client:
        before = await post(client, CHECKS)
        assert "errors" not in before, before
        assert all(check["latestResult"] is None for check in before["data"]["qualityChecks"])
        ledger = {"dataset": "ledger_entries"}
        first = await post(client, RUN, input=ledger)
        assert "errors" not in first, first
        run = first["data"]["runQualityChecks"]
        assert run["passed"] is True  # a WARN passes
        results = {result["checkId"]: result for result in run["results"]}
        assert set(results) == {"ledger_entry_ref_unique", "ledger_entries_have_orders"}
        orphaned = results["ledger_entries_have_orders"]
        assert orphaned["status"] == "WARN"
        assert orphaned["unexpectedCount"] == orphans
        assert len(orphaned["unexpectedSample"]) == orphans
        assert {result["runId"] for result in run["results"]} == {run["id"]}
        second = (await post(client, RUN, input=ledger))["data"]["runQualityChecks"]

        after = (await post(client, CHECKS))["data"]
        latest = {check["databaseId"]: check["latestResult"] for check in after["qualityChecks"]}
        second_ids = {result["checkId"]: result["id"] for result in second["results"]}
        assert (
            latest["ledger_entries_have_orders"]["id"] == second_ids["ledger_entries_have_orders"]
        )
        assert latest["orders_id_unique"] is None
        health = {item["dataset"]: item for item in after["datasetHealth"]}
        assert health["ledger_entries"]["status"] == "WARN"
        assert health["orders"] == {
            "dataset": "orders",
            "checks": 5,
            "neverRun": 5,
            "status": None,
            "counts": [{"status": s, "count": 0} for s in ("PASS", "WARN", "FAIL", "ERROR")],
        }

        page = (await post(client, HISTORY))["data"]["qualityCheck"]["history"]
        assert page["totalCount"] == 2
        assert [node["id"] for node in page["nodes"]] == [second_ids["ledger_entries_have_orders"]]
        cursor = page["pageInfo"]["endCursor"]
        older = (await post(client, HISTORY, after=cursor))["data"]["qualityCheck"]["history"]
        assert [node["id"] for node in older["nodes"]] == [orphaned["id"]]
        assert older["pageInfo"]["hasNextPage"] is False

        # Backwards from the end (the oldest), by the check's global id, and node(id:).
        check = (await post(client, OLDEST, id="ledger_entries_have_orders"))["data"][
            "qualityCheck"
        ]
        assert check["databaseId"] == "ledger_entries_have_orders"
        assert check["id"] != check["databaseId"]
        oldest = check["history"]
        assert [node["id"] for node in oldest["nodes"]] == [orphaned["id"]]
        assert oldest["pageInfo"]["hasPreviousPage"] is True
        cursor = oldest["pageInfo"]["startCursor"]
        newer = await post(client, OLDEST, id=check["id"], before=cursor)
        newer_page = newer["data"]["qualityCheck"]["history"]
        assert [node["id"] for node in newer_page["nodes"]] == [
            second_ids["ledger_entries_have_orders"]
        ]
        assert newer_page["pageInfo"]["hasPreviousPage"] is False
        found = (await post(client, NODE, id=check["id"]))["data"]["node"]
        assert found["__typename"] == "QualityCheck"
        assert found["latestResult"]["id"] == second_ids["ledger_entries_have_orders"]
        result = (await post(client, NODE, id=orphaned["id"]))["data"]["node"]
        assert result == {
            "__typename": "QualityResult",
            "id": orphaned["id"],
            "checkId": "ledger_entries_have_orders",
            "status": "WARN",
        }


async def test_a_failing_or_erroring_check_fails_the_run_not_the_request(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    path = tmp_path / "checks.yaml"
    path.write_text(
        """
checks:
  - {id: broken, description: d, dataset: orders, type: not_null, column: id,
     where: "no_such_column = 1", tags: [mine]}
  - {id: no_events, description: d, dataset: events, type: freshness, column: occurred_at,
     failAfterSeconds: 60, where: "1 = 0", tags: [mine]}
  - {id: fine, description: d, dataset: orders, type: unique, column: id, tags: [mine]}
"""
    )
    async with serving(create_app(make_settings(quality_checks_path=path))) as client:
        body = await post(client, RUN, input={"tag": "mine"})
        assert "errors" not in body, body
        run = body["data"]["runQualityChecks"]
        assert run["passed"] is False
        statuses = {result["checkId"]: result["status"] for result in run["results"]}
        assert statuses == {"broken": "ERROR", "no_events": "ERROR", "fine": "PASS"}
        reasons = {result["checkId"]: result["reason"] for result in run["results"]}
        assert "no_such_column" in reasons["broken"]
        assert "no rows" in reasons["no_events"]

        unknown = await post(client, RUN, input={"checkIds": ["nope"]})
        assert unknown["data"]["runQualityChecks"] is None
        assert unknown["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        missing = await post(client, '{ qualityCheck(id: "nope") { id } }')
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_the_cli_exits_non_zero_on_a_failure_and_zero_on_warnings(
    seeded_sqlite_url: str, tmp_path: Path
) -> None:
    environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
    everything = run_dataintel(["quality", "run"], tmp_path, environment)
    assert everything.returncode == 1, everything.stderr
    lines = everything.stdout.splitlines()
    assert any(line.startswith("FAIL  events_fresh (events)") for line in lines)
    assert any(line.startswith("WARN  ledger_entries_have_orders") for line in lines)

    # The ledger's checks only warn (orders_total_in_range, also tagged finance, fails on
    # the seeded negated totals).
    ledger = run_dataintel(["quality", "run", "--dataset", "ledger_entries"], tmp_path, environment)
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    finance = run_dataintel(["quality", "run", "--tag", "finance"], tmp_path, environment)
    assert finance.returncode == 1, finance.stdout + finance.stderr
    assert any(
        line.startswith("FAIL  orders_total_in_range") for line in finance.stdout.splitlines()
    )
    one = run_dataintel(["quality", "run", "--check", "orders_id_unique"], tmp_path, environment)
    assert one.returncode == 0
    assert one.stdout.startswith("PASS  orders_id_unique (orders)")

    unknown = run_dataintel(["quality", "run", "--check", "nope"], tmp_path, environment)
    assert unknown.returncode == 1
    assert "Unknown quality checks: nope" in unknown.stderr
