"""`dataintel analytics rollups build`: builds every rollup, then only what changed."""

from __future__ import annotations

from pathlib import Path

from tests.plugins.cli import assert_one_line_error, clean_environment, run_dataintel


def test_build_then_refresh_then_one_partition(
    seeded_sqlite_url: str, fresh_directory: Path
) -> None:
    environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
    built = run_dataintel(["analytics", "rollups", "build"], fresh_directory, environment)
    assert built.returncode == 0, built.stderr
    # UTC days: those holding orders, and events (which span a few more days).
    assert "orders_hourly (table recreated): 511 partitions rebuilt" in built.stdout
    assert "events_hourly (table recreated): 546 partitions rebuilt" in built.stdout

    again = run_dataintel(["analytics", "rollups", "build"], fresh_directory, environment)
    assert again.returncode == 0, again.stderr
    assert "orders_hourly: 0 partitions rebuilt (0 rows), 0 removed, 511 unchanged" in again.stdout

    one = run_dataintel(
        ["analytics", "rollups", "build", "--rollup", "orders_hourly", "--partition", "2025-03-05"],
        fresh_directory,
        environment,
    )
    assert one.returncode == 0, one.stderr
    assert "orders_hourly: 1 partitions rebuilt" in one.stdout
    assert "  rebuilt 2025-03-05" in one.stdout
    assert "events_hourly" not in one.stdout

    month = run_dataintel(
        ["analytics", "rollups", "build", "--rollup", "orders_hourly", "--partition", "2025-03"],
        fresh_directory,
        environment,
    )
    assert month.returncode == 0, month.stderr
    # Its days that hold orders (March 2025 has few at scale 1), and no other.
    assert "orders_hourly: 25 partitions rebuilt (62 rows), 0 removed, 486 unchanged" in (
        month.stdout
    )
    assert "  rebuilt 2025-03-31" in month.stdout
    assert "  rebuilt 2025-04" not in month.stdout


def test_mistakes_are_one_line(seeded_sqlite_url: str, fresh_directory: Path) -> None:
    environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
    unknown = run_dataintel(
        ["analytics", "rollups", "build", "--rollup", "nope"], fresh_directory, environment
    )
    assert unknown.returncode == 2
    assert "unknown rollup nope; rollups: orders_hourly" in unknown.stderr
    for wrong in ("2025-3", "2025-02-30", "2025-13"):
        refused = run_dataintel(
            ["analytics", "rollups", "build", "--partition", wrong], fresh_directory, environment
        )
        assert refused.returncode == 2
        assert f"'{wrong}' is not a UTC day YYYY-MM-DD or month YYYY-MM" in refused.stderr


def test_a_rollup_that_cannot_be_exact_stops_the_build_in_one_line(
    seeded_sqlite_url: str, fresh_directory: Path
) -> None:
    catalog = fresh_directory / "catalog.yaml"
    catalog.write_text(
        "rollups:\n  - name: bad\n    description: d\n    source: orders\n"
        "    measures: [units_sold]\n",
        "utf-8",
    )
    environment = clean_environment(
        DATAINTEL_DATABASE_URL=seeded_sqlite_url, DATAINTEL_ANALYTICS_CATALOG_PATH=str(catalog)
    )
    result = run_dataintel(["analytics", "rollups", "build"], fresh_directory, environment)
    assert_one_line_error(result, "rollup 'bad'", "not only the rollup's source 'orders'")
