"""The ``dataintel reconcile`` and ``dataintel quality`` commands: run and print.

Runs are stored like ones made through GraphQL (a reconciliation requested by ``cli``).
``reconcile run`` exits 1 when a comparison found discrepancies or could not run;
``quality run`` exits 1 when a check FAILs or ERRORs (WARN passes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from dataintel.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dataintel.services.quality import QualityResult
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
    from dataintel.command_runs import run_on_store
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
        comparisons = load_comparisons(settings.catalogs.reconciliation_comparisons_path)
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
        runs = run_on_store(settings, work)
    except GatewayError as error:
        raise click.ClickException(str(error)) from None
    for run in runs:
        for line in _report_lines(run):
            click.echo(line)
    if any(run.status != "OK" for run in runs):
        raise SystemExit(1)


def _result_line(result: QualityResult) -> str:
    measured = result.measurement
    line = f"{result.status:<5} {result.check_id} ({result.dataset})"
    if measured.reason is not None:
        return f"{line}: {measured.reason}"
    parts = [f"observed {measured.observed_value:g}"] if measured.observed_value is not None else []
    if measured.element_count is not None:
        parts.append(f"{measured.element_count} rows")
    if measured.unexpected_count is not None:
        percent = measured.unexpected_percent
        share = "" if percent is None else f" ({percent:.2f}%)"
        parts.append(f"{measured.unexpected_count} unexpected{share}")
    if measured.unexpected_sample:
        sample = ", ".join(f"{item.value} x{item.count}" for item in measured.unexpected_sample[:5])
        parts.append(f"e.g. {sample}")
    return f"{line}: {'; '.join(parts)}"


@click.group()
def quality() -> None:
    """Data quality checks (docs/quality.md)."""


@quality.command(name="run")
@click.option("--check", "check_ids", multiple=True, metavar="ID", help="Only this check; repeat.")
@click.option("--dataset", default=None, help="Only checks on this table.")
@click.option("--tag", default=None, help="Only checks with this tag.")
def quality_run(check_ids: tuple[str, ...], dataset: str | None, tag: str | None) -> None:
    """Run the declared checks (default: all) now, store and print their results.

    Exit status 1 when a check FAILs or could not run (ERROR); WARN passes.
    """
    from dataintel.command_runs import run_on_store
    from dataintel.errors import GatewayError
    from dataintel.services.quality import (
        CheckSelection,
        QualityCatalogError,
        SqlQualityService,
        load_checks,
    )
    from dataintel.store.migrate import upgrade

    settings = Settings()
    try:
        checks = load_checks(settings.catalogs.quality_checks_path)
    except QualityCatalogError as error:
        raise click.ClickException(f"quality checks: {error}") from None
    selection = CheckSelection(check_ids or None, dataset, tag)

    async def work(engine: AsyncEngine) -> list[QualityResult]:
        await upgrade(engine)
        _run_id, results = await SqlQualityService(engine, checks).run(selection)
        return results

    try:
        results = run_on_store(settings, work)
    except GatewayError as error:
        raise click.ClickException(str(error)) from None
    for result in results:
        click.echo(_result_line(result))
    if any(result.status in ("FAIL", "ERROR") for result in results):
        raise SystemExit(1)
