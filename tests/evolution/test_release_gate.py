"""The release gate: no breaking change since the last release unless the changelog lists it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from graphql import build_schema

from dataintel.app import create_app
from dataintel.cli import main
from dataintel.evolution.changelog import acknowledged_coordinates, unacknowledged
from dataintel.evolution.changes import compare_schemas
from dataintel.evolution.releases import RELEASES_DIRECTORY, latest_release
from dataintel.evolution.schema_source import SchemaSourceError, load_schema
from tests.plugins.app import SettingsFactory, serving

ROOT = Path(__file__).parents[2]
RELEASED = ROOT / RELEASES_DIRECTORY / "0.1.0.graphql"
CURRENCY = '  """ISO 4217 currency code."""\n  currency: String!\n'


def test_no_unacknowledged_breaking_change_since_the_last_release() -> None:
    release = latest_release(ROOT / RELEASES_DIRECTORY)
    assert release is not None, "schema/releases/ holds no released schema"
    changes = compare_schemas(
        build_schema(release.read_text()), build_schema((ROOT / "schema.graphql").read_text())
    )
    failing = unacknowledged(changes, acknowledged_coordinates((ROOT / "CHANGELOG.md").read_text()))
    listed = "\n".join(f"  `{change.coordinate}`: {change.message}" for change in failing)
    assert not failing, (
        f"Breaking changes since {release.stem}; keep the old element (deprecate it), or list"
        " each coordinate under '### Breaking' in CHANGELOG.md's Unreleased section"
        f" (docs/schema-evolution.md):\n{listed}"
    )


def test_the_latest_release_is_the_highest_version(tmp_path: Path) -> None:
    for name in ("0.9.0", "0.10.0", "0.2.1", "notes"):
        (tmp_path / f"{name}.graphql").write_text("type Query { a: Int }")
    assert latest_release(tmp_path) == tmp_path / "0.10.0.graphql"
    assert latest_release(tmp_path / "none") is None


CHANGELOG_WITHOUT_BREAKING = """# Changelog

## [Unreleased]

### Added
- Something with `Order.currency` mentioned in passing.
"""

CHANGELOG_LISTING = """# Changelog

## [Unreleased]

### Breaking
- `{coordinate}`: announced to every client in the 0.2 notes.

### Added
- Something.

## [0.1.0] - 2026-11-01

### Breaking
- `Order.totalCents`: released long ago, acknowledges nothing now.
"""


def candidate(tmp_path: Path, before: str, after: str) -> Path:
    text = RELEASED.read_text()
    assert text.count(before) == 1, before
    path = tmp_path / "candidate.graphql"
    path.write_text(text.replace(before, after))
    return path


def diff(*arguments: str) -> Result:
    return CliRunner().invoke(main, ["schema", "diff", *arguments])


BREAKING_EDITS = {
    "field removed": (CURRENCY, "", "Order.currency"),
    "required argument added": (
        CURRENCY,
        CURRENCY.replace("currency: String!", "currency(format: String!): String!"),
        "Order.currency(format:)",
    ),
    "type changed": ("  totalCents: Int!\n", "  totalCents: String!\n", "Order.totalCents"),
}


@pytest.mark.parametrize(
    ("before", "after", "coordinate"), BREAKING_EDITS.values(), ids=BREAKING_EDITS
)
def test_breaking_change_fails_the_gate_until_the_changelog_lists_it(
    tmp_path: Path, before: str, after: str, coordinate: str
) -> None:
    new = candidate(tmp_path, before, after)

    plain = diff(str(RELEASED), str(new))
    assert plain.exit_code == 1, plain.output
    assert any(
        line.startswith("BREAKING") and f" {coordinate} " in line
        for line in plain.output.splitlines()
    ), plain.output

    unlisted = tmp_path / "unlisted.md"
    unlisted.write_text(CHANGELOG_WITHOUT_BREAKING)
    assert diff(str(RELEASED), str(new), "--changelog", str(unlisted)).exit_code == 1

    listed = tmp_path / "listed.md"
    listed.write_text(CHANGELOG_LISTING.format(coordinate=coordinate))
    acknowledged = diff(str(RELEASED), str(new), "--changelog", str(listed))
    assert acknowledged.exit_code == 0, acknowledged.output
    assert "acknowledged in the changelog" in acknowledged.output


def test_an_added_optional_field_passes(tmp_path: Path) -> None:
    new = candidate(tmp_path, CURRENCY, CURRENCY + '  """A note."""\n  note: String\n')
    result = diff(str(RELEASED), str(new))
    assert result.exit_code == 0, result.output
    assert "SAFE" in result.output
    assert "Order.note" in result.output
    assert result.output.rstrip().endswith("0 breaking, 0 dangerous, 1 safe")


def test_only_the_unreleased_breaking_section_acknowledges() -> None:
    text = CHANGELOG_LISTING.format(coordinate="Query.orders(first:)")
    assert acknowledged_coordinates(text) == {"Query.orders(first:)"}
    assert acknowledged_coordinates(CHANGELOG_WITHOUT_BREAKING) == frozenset()
    assert acknowledged_coordinates("# Changelog\n") == frozenset()


def test_an_unreadable_schema_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.graphql"
    broken.write_text("type Query {")
    result = diff(str(RELEASED), str(broken))
    assert result.exit_code == 2
    assert "broken.graphql is not a valid SDL schema" in result.output


async def test_a_running_gateway_is_read_by_introspection(make_settings: SettingsFactory) -> None:
    async with serving(create_app(make_settings())) as client:
        served = await load_schema("http://testserver/graphql", client=client)
    committed = build_schema((ROOT / "schema.graphql").read_text())
    assert compare_schemas(committed, served) == []


async def test_a_refused_introspection_says_why(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(environment="production", introspection_anonymous=False))
    async with serving(app) as client:
        with pytest.raises(SchemaSourceError, match="refused introspection"):
            await load_schema("http://testserver/graphql", client=client)


def test_json_lists_each_change_and_whether_it_is_acknowledged(tmp_path: Path) -> None:
    new = candidate(tmp_path, CURRENCY, "")
    listed = tmp_path / "listed.md"
    listed.write_text(CHANGELOG_LISTING.format(coordinate="Order.currency"))
    result = diff(str(RELEASED), str(new), "--json", "--changelog", str(listed))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {
            "criticality": "breaking",
            "kind": "FIELD_REMOVED",
            "coordinate": "Order.currency",
            "message": "Field Order.currency was removed.",
            "acknowledged": True,
        }
    ]
