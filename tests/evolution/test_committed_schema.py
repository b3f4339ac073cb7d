"""schema.graphql holds the schema the gateway serves, so every schema change shows in review."""

from __future__ import annotations

import difflib
from pathlib import Path

from click.testing import CliRunner

from dataintel.app import create_app
from dataintel.cli import main
from tests.plugins.app import SettingsFactory

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "schema.graphql"


def test_the_committed_sdl_is_the_served_schema(make_settings: SettingsFactory) -> None:
    served = create_app(make_settings()).state.schema.as_str() + "\n"
    committed = COMMITTED.read_text()
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            served.splitlines(keepends=True),
            "schema.graphql (committed)",
            "served schema",
        )
    )
    assert not diff, (
        "schema.graphql differs from the served schema; review the change, then run"
        " `dataintel schema print --output schema.graphql`:\n" + diff
    )


def test_print_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    result = CliRunner().invoke(main, ["schema", "print", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == COMMITTED.read_text()


def test_print_writes_to_standard_output() -> None:
    result = CliRunner().invoke(main, ["schema", "print"])
    assert result.exit_code == 0
    assert result.output == COMMITTED.read_text()
