"""The ``dataintel reconcile`` commands: run declared comparisons and print their reports.

A run is stored like one made through GraphQL (requested by ``cli``). The exit status is 0
when every comparison agreed, 1 when one found discrepancies or could not run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dataintel.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dataintel.services.reconciliation import ReconciliationRun

REQUESTED_BY = "cli"


def _report_lines(run: ReconciliationRun) -> list[str]:
    lines = [f"{run.comparison_id}: {run.status} (run {run.id}, {run.duration_ms:.0f} ms)"]
    report = run.report
    if report is None:
        lines.append(f"  error: {run.error}")
        return lines
    rate = "n/a" if report.match_rate is None else f"{report.match_rate:.2%}"
    lines.append(
        f"  rows: left {report.left.rows}, right {report.right.rows};"
        f" matched {report.matched}, mismatched {report.mismatched},"
        f" only left {report.only_left}, only right {report.only_right};"
        f" match rate {rate} (of the larger side)"
    )
    for name, side in (("left", report.left), ("right", report.right)):
        unpaired = (
            f"NULL keys {side.null_key_rows}, duplicated keys {side.duplicate_keys}"
            f" ({side.duplicate_rows} rows), blocked by the other side's duplicates"
            f" {side.blocked_rows}"
        )
        lines.append(f"  {name} ({side.dataset}): {unpaired}")
        if side.only_columns:
            lines.append(f"    columns only here: {', '.join(side.only_columns)}")
    for column in report.columns:
        tolerance = f"absTol {column.abs_tolerance:g}, relTol {column.rel_tolerance:g}"
        biggest = "" if column.max_abs_diff is None else f", max |diff| {column.max_abs_diff:g}"
        lines.append(
            f"  column {column.name} ({column.kind}; {tolerance}): {column.mismatch_count}"
            f" mismatched, {column.within_tolerance_count} within tolerance,"
            f" {column.null_diff} NULL on one side{biggest}"
        )
    for sample in report.samples:
        values = "; ".join(
            f"{value.column} {value.left} | {value.right}" for value in sample.values
        )
        rows = f"rows {sample.left_rows} | {sample.right_rows}"
        lines.append(f"  sample {sample.category} key={','.join(sample.key)}: {rows}; {values}")
    return lines


@click.group()
def reconcile() -> None:
    """Key-based comparisons of two datasets (docs/reconciliation.md)."""


@reconcile.command(name="run")
@click.argument("comparison", required=False)
@click.option(
    "--sample-size",
    type=click.IntRange(0, 100),
    default=None,
    help="Samples per category; default: as declared.",
)
def reconcile_run(comparison: str | None, sample_size: int | None) -> None:
    """Run COMPARISON (default: every declared one) now, store and print its report.

    Exit status 1 when a comparison found discrepancies or could not run.
    """
    from dataintel.cli import _run
    from dataintel.errors import GatewayError
    from dataintel.services.reconciliation import (
        ComparisonCatalogError,
        ReconcileOverrides,
        SqlReconciliationService,
        load_comparisons,
    )
    from dataintel.store.migrate import upgrade

    settings = Settings()
    try:
        comparisons = load_comparisons(settings.reconciliation_comparisons_path)
    except ComparisonCatalogError as error:
        raise click.ClickException(f"comparisons: {error}") from None
    if comparison is not None and comparison not in comparisons:
        raise click.ClickException(
            f"there is no comparison '{comparison}'; comparisons: {', '.join(comparisons)}"
        )
    chosen = [comparison] if comparison is not None else list(comparisons)
    overrides = ReconcileOverrides(sample_size=sample_size)

    async def work(engine: AsyncEngine) -> list[ReconciliationRun]:
        await upgrade(engine)
        service = SqlReconciliationService(engine, comparisons)
        return [await service.run(name, overrides, REQUESTED_BY) for name in chosen]

    try:
        runs = _run(settings, work)
    except GatewayError as error:
        raise click.ClickException(str(error)) from None
    for run in runs:
        for line in _report_lines(run):
            click.echo(line)
    if any(run.status != "OK" for run in runs):
        raise SystemExit(1)
