"""The commands that rebuild or drop derived data: feature values, rollups, cached entries.

``features materialize``, ``analytics rollups build`` and ``cache invalidate``; each one
that changes what servers may have cached invalidates it on every server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from dataintel.command_runs import invalidate_everywhere, run_on_store
from dataintel.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dataintel.services.features import MaterializationSummary


async def materialize_when_empty(settings: Settings, engine: AsyncEngine) -> None:
    """Materializes the feature views once, so a fresh demo store serves features at once."""
    from dataintel.cache import features_tag
    from dataintel.services.features import SqlFeatureService, load_catalog

    service = SqlFeatureService(engine, load_catalog(settings.catalogs.feature_views_path))
    if not await service.has_values():
        click.echo("Materializing the feature views...", err=True)
        await service.materialize()
        views = service.catalog.views
        await invalidate_everywhere(
            settings, engine, [features_tag(view.entity_type) for view in views]
        )


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO 8601 date or time.") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@click.group()
def features() -> None:
    """Online feature views (docs/features.md)."""


@features.command(name="materialize")
@click.option(
    "--as-of",
    metavar="ISO",
    default=None,
    help="Compute the views as of this moment (UTC when no offset is given);"
    " default: the latest order or event in the store.",
)
def features_materialize(as_of: str | None) -> None:
    """Compute every feature view and upsert its values, in one transaction."""
    from dataintel.cache import features_tag
    from dataintel.services.features import FeatureCatalogError, SqlFeatureService, load_catalog
    from dataintel.store.migrate import upgrade

    moment = _moment(as_of) if as_of else None
    settings = Settings()
    try:
        catalog = load_catalog(settings.catalogs.feature_views_path)
    except FeatureCatalogError as error:
        raise click.ClickException(f"feature views: {error}") from None

    async def work(engine: AsyncEngine) -> MaterializationSummary:
        await upgrade(engine)
        summary = await SqlFeatureService(engine, catalog).materialize(moment)
        tags = [features_tag(view.entity_type) for view in catalog.views]
        await invalidate_everywhere(settings, engine, tags)
        return summary

    summary = run_on_store(settings, work)
    click.echo(
        f"materialized {summary.rows} values as of {summary.as_of.isoformat()}"
        f" at {summary.materialized_at.isoformat()}"
    )
    for view, rows in summary.rows_by_view.items():
        click.echo(f"  {view}: {rows}")
    if summary.rows == 0:
        click.echo("the store holds no customers or products: run `dataintel seed` first", err=True)


@click.group()
def analytics() -> None:
    """Analytics over the catalog (docs/analytics.md)."""


@analytics.group()
def rollups() -> None:
    """Rollups: pre-aggregated tables that answer the queries they cover."""


@rollups.command(name="build")
@click.option("--rollup", "names", multiple=True, help="Only this rollup; repeat for several.")
@click.option(
    "--partition",
    "partitions",
    multiple=True,
    metavar="YYYY-MM[-DD]",
    help=(
        "Rebuild this UTC day, or the days of this UTC month (for a grain of another zone:"
        " that zone's day or month), whatever changed; repeat."
    ),
)
@click.option("--full", is_flag=True, help="Rebuild every partition, changed or not.")
def rollups_build(names: tuple[str, ...], partitions: tuple[str, ...], full: bool) -> None:
    """Build the rollups: the partitions whose source rows changed (or those named).

    Creates the rollup tables when they are missing or their definition changed (rollups
    are derived data: no migration). Partitions are swapped atomically, adjacent ones up to a
    month per transaction.
    """
    import re

    from dataintel.services.analytics import (
        AnalyticsCatalogError,
        RefreshSummary,
        load_catalog,
        refresh_rollups,
    )
    from dataintel.store.migrate import upgrade

    settings = Settings()
    try:
        catalog = load_catalog(settings.analytics.catalog_path)
    except AnalyticsCatalogError as error:
        raise click.ClickException(f"analytics catalog: {error}") from None
    unknown = [name for name in names if name not in catalog.rollups]
    if unknown:
        raise click.BadParameter(
            f"unknown rollup {', '.join(unknown)}; rollups: {', '.join(catalog.rollups)}",
            param_hint="--rollup",
        )
    for partition in partitions:
        try:
            # A month is checked as its first day; strptime alone accepts '2025-3'.
            valid = bool(re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", partition)) and bool(
                datetime.strptime(f"{partition}-01"[:10], "%Y-%m-%d")
            )
        except ValueError:
            valid = False
        if not valid:
            raise click.BadParameter(
                f"'{partition}' is not a UTC day YYYY-MM-DD or month YYYY-MM",
                param_hint="--partition",
            )
    if full and partitions:
        raise click.UsageError("--full and --partition exclude each other.")

    async def work(engine: AsyncEngine) -> list[RefreshSummary]:
        await upgrade(engine)
        return await refresh_rollups(
            engine, catalog, list(names) or None, partitions=list(partitions) or None, full=full
        )

    for summary in run_on_store(settings, work):
        recreated = " (table recreated)" if summary.recreated else ""
        click.echo(
            f"{summary.rollup}{recreated}: {len(summary.rebuilt)} partitions rebuilt"
            f" ({summary.rows} rows), {len(summary.removed)} removed,"
            f" {summary.unchanged} unchanged"
        )
        for partition in summary.rebuilt:
            click.echo(f"  rebuilt {partition}")
        for partition in summary.removed:
            click.echo(f"  removed {partition}")


@click.group()
def cache() -> None:
    """The shared cache (docs/resilience.md)."""


@cache.command(name="invalidate")
@click.argument("tags", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every entry of every replica.")
def cacheinvalidate_everywhere(tags: tuple[str, ...], everything: bool) -> None:
    """Invalidate every entry carrying one of the TAGS (e.g. customer:42, dataset:orders).

    With Redis, every replica drops them at once; without it, running servers drop them
    within DATAINTEL_CACHE_TAG_POLL_SECONDS (docs/resilience.md).
    """
    from dataintel.cache import EVERYTHING
    from dataintel.cache.tags import tag_problem
    from dataintel.services.features import FeatureCatalogError, load_catalog
    from dataintel.store import tables
    from dataintel.store.migrate import upgrade

    chosen = [*tags, EVERYTHING] if everything else list(tags)
    if not chosen:
        raise click.UsageError("Name at least one tag, or --all.")
    settings = Settings()
    try:
        catalog = load_catalog(settings.catalogs.feature_views_path)
        entity_types = {view.entity_type for view in catalog.views}
    except FeatureCatalogError as error:
        raise click.ClickException(f"feature views: {error}") from None
    table_names = [table.name for table in tables.DEMO_TABLES]
    for tag in chosen:
        problem = tag_problem(tag, table_names, entity_types)
        if problem is not None:
            raise click.ClickException(problem)

    async def work(engine: AsyncEngine) -> None:
        if settings.redis.url is None:
            await upgrade(engine)
        await invalidate_everywhere(settings, engine, chosen)

    run_on_store(settings, work)
    click.echo(f"invalidated {', '.join(chosen)}")
