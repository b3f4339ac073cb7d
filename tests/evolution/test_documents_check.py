"""`dataintel documents check` names the client documents a candidate schema would break."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dataintel.cli import main
from dataintel.evolution.document_check import readme_operations

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
# The committed SDL of the served schema: the README's examples may use fields added since
# the last release, so a candidate made from the release would break them as well.
CURRENT = (ROOT / "schema.graphql").read_text()
CHANNEL = '  """Where it was placed."""\n  channel: SalesChannel!\n'
TIER = '  """Loyalty tier."""\n  tier: CustomerTier!\n'

MANIFEST = {
    "dash:OrderChannel": "query OrderChannel { orders(first: 1) { nodes { id channel } } }",
    "dash:CustomerNames": "query CustomerNames { customers(first: 1) { nodes { name } } }",
    "dash:Totals": "query Totals { orders(first: 1) { nodes { total } } }",
}


def without(tmp_path: Path, *removed: str) -> str:
    text = CURRENT
    for element in removed:
        assert text.count(element) == 1, element
        text = text.replace(element, "")
    path = tmp_path / "candidate.graphql"
    path.write_text(text)
    return str(path)


def check(*arguments: str) -> Result:
    return CliRunner().invoke(main, ["documents", "check", *arguments])


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path: Path) -> None:
    """The manifest's documents registered as trusted documents in the test's Redis."""
    monkeypatch.setenv("DATAINTEL_REDIS_URL", redis_url)
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps(MANIFEST))
    result = CliRunner().invoke(main, ["documents", "register", str(manifest)])
    assert result.exit_code == 0, result.output


@pytest.mark.redis
@pytest.mark.usefixtures("registered")
def test_a_registered_document_using_a_removed_field_is_named(tmp_path: Path) -> None:
    result = check("--schema", without(tmp_path, CHANNEL), "--readme", str(README))
    assert result.exit_code == 1, result.output
    assert "BROKEN dash:OrderChannel  OrderChannel" in result.output
    assert "Cannot query field 'channel' on type 'Order'." in result.output
    assert "CustomerNames" not in result.output
    examples = len(readme_operations(README.read_text()))
    assert (
        f"{len(MANIFEST) + examples - 1} of {len(MANIFEST) + examples} documents" in result.output
    )


@pytest.mark.redis
@pytest.mark.usefixtures("registered")
def test_every_document_holds_against_the_current_schema() -> None:
    result = check("--readme", str(README))
    assert result.exit_code == 0, result.output
    assert "BROKEN" not in result.output
    # Still valid, but what must move before Order.total can go.
    assert "DEPRECATED dash:Totals  Totals  uses Order.total" in result.output


def test_a_readme_example_using_a_removed_field_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAINTEL_REDIS_URL", raising=False)
    result = check("--schema", without(tmp_path, TIER), "--readme", str(README), "--no-registry")
    assert result.exit_code == 1, result.output
    assert "BROKEN README.md#1  RecentOrders" in result.output
    assert "Cannot query field 'tier' on type 'Customer'." in result.output


def test_a_manifest_file_is_checked_without_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATAINTEL_REDIS_URL", raising=False)
    manifest = tmp_path / "persisted-documents.json"
    manifest.write_text(json.dumps(MANIFEST))
    result = check(
        "--schema", without(tmp_path, CHANNEL), "--manifest", str(manifest), "--readme", "none.md"
    )
    assert result.exit_code == 1, result.output
    assert f"BROKEN {manifest}:dash:OrderChannel" in result.output
    assert "2 of 3 documents still valid" in result.output
    assert "DATAINTEL_REDIS_URL is not set" in result.output
