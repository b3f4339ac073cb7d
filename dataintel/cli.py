"""The ``dataintel`` command: serve, seed, db upgrade, features materialize, schema print."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import click

from dataintel import __version__
from dataintel.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dataintel.services.features import MaterializationSummary

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Runs one store task on a fresh engine and disposes of it."""
    from dataintel.store.engine import create_engine

    async def main() -> T:
        engine = create_engine(settings)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dataintel")
def main() -> None:
    """dataintel: the GraphQL gateway of the data-intelligence service.

    Every option can also be set as an environment variable DATAINTEL_<NAME>
    (see docs/configuration.md); command-line flags win.
    """


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (default 8000).")
@click.option("--workers", type=int, default=None, help="Worker processes (default 1).")
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default=None,
    help="auto: console on a terminal, JSON lines otherwise.",
)
def serve(
    host: str | None, port: int | None, workers: int | None, reload: bool, log_format: str | None
) -> None:
    """Serve the gateway; migrate and seed the store first when it is new.

    GraphiQL answers at http://HOST:PORT/graphql in a browser.
    """
    import uvicorn

    from dataintel.observability.logging import configure_logging
    from dataintel.store.migrate import upgrade
    from dataintel.store.seed import is_seeded, seed

    overrides = {"host": host, "port": port, "workers": workers, "log_format": log_format}
    # Worker processes build their own Settings, so flags travel as environment variables.
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"DATAINTEL_{name.upper()}"] = str(value)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)

    async def prepare(engine: AsyncEngine) -> None:
        if settings.auto_migrate:
            await upgrade(engine)
        if settings.auto_seed and not await is_seeded(engine):
            click.echo(f"Seeding the demo data (scale {settings.seed_scale})...", err=True)
            await seed(engine, settings.seed_scale)
        if settings.auto_seed:
            await _materialize_when_empty(settings, engine)

    _run(settings, prepare)
    uvicorn.run(
        "dataintel.app:create_app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=None if reload else settings.workers,
        reload=reload,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


@main.command(name="seed")
@click.option("--scale", type=click.IntRange(1, 1000), default=1, show_default=True)
def seed_command(scale: int) -> None:
    """Load the deterministic demo data (same scale, same rows; safe to run again)."""
    from dataintel.store.migrate import upgrade
    from dataintel.store.seed import seed

    async def work(engine: AsyncEngine) -> object:
        await upgrade(engine)
        return await seed(engine, scale)

    summary = _run(Settings(), work)
    click.echo(summary)


@main.group()
def db() -> None:
    """Store schema migrations."""


@db.command(name="upgrade")
def db_upgrade() -> None:
    """Migrate the store to the newest schema (creates the SQLite file if needed)."""
    from dataintel.store.migrate import current_revision, upgrade

    async def work(engine: AsyncEngine) -> str | None:
        await upgrade(engine)
        return await current_revision(engine)

    click.echo(f"store at revision {_run(Settings(), work)}")


async def _materialize_when_empty(settings: Settings, engine: AsyncEngine) -> None:
    """Materializes the feature views once, so a fresh demo store serves features at once."""
    from dataintel.services.features import SqlFeatureService, load_catalog

    service = SqlFeatureService(engine, load_catalog(settings.feature_views_path))
    if not await service.has_values():
        click.echo("Materializing the feature views...", err=True)
        await service.materialize()


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not an ISO 8601 date or time.") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@main.group()
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
    from dataintel.services.features import FeatureCatalogError, SqlFeatureService, load_catalog

    moment = _moment(as_of) if as_of else None
    settings = Settings()
    try:
        catalog = load_catalog(settings.feature_views_path)
    except FeatureCatalogError as error:
        raise click.ClickException(str(error)) from None

    async def work(engine: AsyncEngine) -> MaterializationSummary:
        return await SqlFeatureService(engine, catalog).materialize(moment)

    summary = _run(settings, work)
    click.echo(
        f"materialized {summary.rows} values as of {summary.as_of.isoformat()}"
        f" at {summary.materialized_at.isoformat()}"
    )
    for view, rows in summary.rows_by_view.items():
        click.echo(f"  {view}: {rows}")


@main.group()
def schema() -> None:
    """The GraphQL schema."""


@schema.command(name="print")
def schema_print() -> None:
    """Print the schema in SDL to standard output."""
    from dataintel.schema import build_schema

    click.echo(build_schema().as_str())
