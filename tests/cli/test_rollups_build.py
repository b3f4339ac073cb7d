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
    assert "orders_hourly (table recreated): 18 partitions rebuilt" in built.stdout
    assert "events_hourly (table recreated): 18 partitions rebuilt" in built.stdout

    again = run_dataintel(["analytics", "rollups", "build"], fresh_directory, environment)
    assert again.returncode == 0, again.stderr
    assert "orders_hourly: 0 partitions rebuilt (0 rows), 0 removed, 18 unchanged" in again.stdout

    one = run_dataintel(
        ["analytics", "rollups", "build", "--rollup", "orders_hourly", "--partition", "2025-03"],
        fresh_directory,
        environment,
    )
    assert one.returncode == 0, one.stderr
    assert "orders_hourly: 1 partitions rebuilt" in one.stdout
    assert "  rebuilt 2025-03" in one.stdout
    assert "events_hourly" not in one.stdout


def test_mistakes_are_one_line(seeded_sqlite_url: str, fresh_directory: Path) -> None:
    environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
    unknown = run_dataintel(
        ["analytics", "rollups", "build", "--rollup", "nope"], fresh_directory, environment
    )
    assert unknown.returncode == 2
    assert "unknown rollup nope; rollups: orders_hourly" in unknown.stderr
    month = run_dataintel(
        ["analytics", "rollups", "build", "--partition", "2025-3"], fresh_directory, environment
    )
    assert month.returncode == 2
    assert "'2025-3' is not a UTC month YYYY-MM" in month.stderr


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
