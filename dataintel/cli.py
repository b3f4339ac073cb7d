"""The ``dataintel`` command: serve, seed, db upgrade, features materialize, analytics rollups
build, schema print.

An error a person can fix (settings, a catalog file, the store) ends a command with one line
on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import click
from pydantic import ValidationError

from dataintel import __version__
from dataintel.check_commands import quality, reconcile
from dataintel.evolution.commands import documents_check, schema_diff
from dataintel.preflight import ConfigurationError, describe_validation_error
from dataintel.settings import Settings, deprecated_variables

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dataintel.services.features import MaterializationSummary
    from dataintel.store.seed import SeedSummary

T = TypeVar("T")


def _run(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Runs one store task on a fresh engine and disposes of it; store failures in one line."""
    from dataintel.store.diagnosis import STORE_FAILURES, describe_store_failure
    from dataintel.store.engine import create_engine, store_url

    try:
        store_url(settings.store.database_url)
    except ValueError as error:
        raise click.ClickException(str(error)) from None

    async def main() -> T:
        engine = create_engine(settings.store)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except STORE_FAILURES as error:
        raise click.ClickException(
            describe_store_failure(error, settings.store.database_url)
        ) from None


class _Commands(click.Group):
    """The command group; settings a person can fix are reported in one line."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigurationError as error:
            raise click.ClickException(f"cannot start: {error}") from None
        except ValidationError as error:
            raise click.ClickException(describe_validation_error(error)) from None


def _server_settings() -> Settings:
    """The settings of a long-running process, warning of each deprecated variable set."""
    settings = Settings()
    for old, new in deprecated_variables(os.environ):
        click.echo(f"warning: {old} is deprecated and read as {new}; set {new}", err=True)
    return settings


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
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
    from dataintel.observability.multiprocess import prepare_multiprocess_dir
    from dataintel.preflight import check_settings
    from dataintel.store.migrate import upgrade
    from dataintel.store.seed import is_seeded, seed

    overrides = {"host": host, "port": port, "workers": workers, "log_format": log_format}
    # Worker processes build their own Settings, so flags travel as environment variables.
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"DATAINTEL_{name.upper()}"] = str(value)
    settings = _server_settings()
    # Everything is checked before the store is opened: a refused start writes nothing.
    check_settings(settings)
    configure_logging(settings.observability.log_format, settings.observability.log_level)

    async def prepare(engine: AsyncEngine) -> None:
        if settings.store.auto_migrate:
            await upgrade(engine)
        if settings.seeds_demo_data and not await is_seeded(engine):
            click.echo(f"Seeding the demo data (scale {settings.store.seed_scale})...", err=True)
            await seed(engine, settings.store.seed_scale)
        if settings.seeds_demo_data:
            await _materialize_when_empty(settings, engine)

    _run(settings, prepare)
    shared_metrics = (
        None
        if reload
        else prepare_multiprocess_dir(settings.observability, settings.server.workers)
    )
    try:
        if reload or settings.server.workers > 1:
            # uvicorn's supervisors build their own servers: no drain period, only uvicorn's
            # graceful shutdown (docs/operations.md: one worker per container).
            uvicorn.run(
                "dataintel.app:create_app_from_environment",
                factory=True,
                host=settings.server.host,
                port=settings.server.port,
                workers=None if reload else settings.server.workers,
                reload=reload,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=max(1, round(settings.server.shutdown_timeout_seconds)),
            )
        else:
            _serve_draining(settings)
    finally:
        if shared_metrics is not None and shared_metrics[1]:
            shutil.rmtree(shared_metrics[0], ignore_errors=True)


def _serve_draining(settings: Settings) -> None:
    """One process that drains on SIGTERM (dataintel/server.py), then exits 0."""
    import uvicorn

    from dataintel.server import DrainingServer

    config = uvicorn.Config(
        "dataintel.app:create_app_from_environment",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=max(1, round(settings.server.shutdown_timeout_seconds)),
    )
    server = DrainingServer(config, settings.server.shutdown_drain_seconds)
    # uvicorn raises a caught SIGINT again once shut down, as uvicorn.run expects.
    with suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(3)


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=None,
    help="Jobs run at once (default DATAINTEL_JOBS_CONCURRENCY, 4).",
)
def worker(concurrency: int | None) -> None:
    """Run background jobs (exports, GDPR requests) from the Redis queue until SIGTERM.

    Needs DATAINTEL_REDIS_URL. On SIGTERM, running jobs get the grace period to finish and
    are then handed back to the queue.
    """
    from dataintel.observability.logging import configure_logging
    from dataintel.worker import run_worker

    settings = _server_settings()
    if settings.redis.url is None:
        raise click.ClickException(
            "the worker takes jobs from Redis: set DATAINTEL_REDIS_URL (without Redis, the"
            " server runs jobs itself)"
        )
    configure_logging(settings.observability.log_format, settings.observability.log_level)

    async def work(engine: AsyncEngine) -> None:
        await run_worker(settings, engine, concurrency or settings.jobs.concurrency)

    _run(settings, work)


@main.command(name="seed")
@click.option("--scale", type=click.IntRange(1, 1000), default=1, show_default=True)
def seed_command(scale: int) -> None:
    """Load the deterministic demo data (same scale, same rows; safe to run again)."""
    from dataintel.store.migrate import upgrade
    from dataintel.store.seed import seed

    async def work(engine: AsyncEngine) -> SeedSummary:
        await upgrade(engine)
        return await seed(engine, scale)

    summary = _run(Settings(), work)
    click.echo(
        f"seeded the demo data at scale {summary.scale}: {summary.customers} customers,"
        f" {summary.products} products, {summary.orders} orders ({summary.order_items} items),"
        f" {summary.events} events, {summary.ledger_entries} ledger entries,"
        f" {summary.roles} roles"
    )
    click.echo(
        "deliberate ledger discrepancies, for reconciliation:"
        f" {summary.orders_missing_from_ledger} orders missing from the ledger,"
        f" {summary.ledger_amount_mismatches} amount mismatches"
        f" ({summary.ledger_large_amount_mismatches} by a dollar or more),"
        f" {summary.ledger_booked_at_outliers} booked-at outliers,"
        f" {summary.ledger_entries_without_order} entries without an order"
    )
    click.echo(
        "deliberate quality defects, for the quality checks:"
        f" {summary.customers_without_country} customers without a country,"
        f" {summary.duplicated_customer_emails} e-mail addresses held twice (other case),"
        f" {summary.orders_total_out_of_range} order totals out of range,"
        f" {summary.stopped_channel_events_missing} marketplace events missing"
        f" (its feed stops at {summary.stopped_channel_last_event_at})"
    )


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
    from dataintel.cache import features_tag
    from dataintel.services.features import SqlFeatureService, load_catalog

    service = SqlFeatureService(engine, load_catalog(settings.catalogs.feature_views_path))
    if not await service.has_values():
        click.echo("Materializing the feature views...", err=True)
        await service.materialize()
        views = service.catalog.views
        await _invalidate(settings, engine, [features_tag(view.entity_type) for view in views])


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
        await _invalidate(settings, engine, tags)
        return summary

    summary = _run(settings, work)
    click.echo(
        f"materialized {summary.rows} values as of {summary.as_of.isoformat()}"
        f" at {summary.materialized_at.isoformat()}"
    )
    for view, rows in summary.rows_by_view.items():
        click.echo(f"  {view}: {rows}")
    if summary.rows == 0:
        click.echo("the store holds no customers or products: run `dataintel seed` first", err=True)


async def _invalidate(settings: Settings, engine: AsyncEngine, tags: list[str]) -> None:
    """Invalidates cached entries on every server: through Redis, or through the store without.

    Servers without Redis poll the store's tag versions (DATAINTEL_CACHE_TAG_POLL_SECONDS).
    """
    from dataintel.cache.store_tags import bump_tags
    from dataintel.platform import invalidate_shared

    if settings.redis.url is None:
        await bump_tags(engine, tags)
    elif not await invalidate_shared(settings.redis, tags):
        click.echo(
            "warning: Redis did not take the invalidation; replicas serve what they cached"
            " until its TTL",
            err=True,
        )


@main.group()
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
    metavar="YYYY-MM",
    help="Rebuild this UTC month whatever changed; repeat for several.",
)
@click.option("--full", is_flag=True, help="Rebuild every partition, changed or not.")
def rollups_build(names: tuple[str, ...], partitions: tuple[str, ...], full: bool) -> None:
    """Build the rollups: the partitions whose source rows changed (or those named).

    Creates the rollup tables when they are missing or their definition changed (rollups
    are derived data: no migration). Each partition is swapped in one transaction.
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
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", partition):
            raise click.BadParameter(
                f"'{partition}' is not a UTC month YYYY-MM", param_hint="--partition"
            )
    if full and partitions:
        raise click.UsageError("--full and --partition exclude each other.")

    async def work(engine: AsyncEngine) -> list[RefreshSummary]:
        await upgrade(engine)
        return await refresh_rollups(
            engine, catalog, list(names) or None, partitions=list(partitions) or None, full=full
        )

    for summary in _run(settings, work):
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


@main.group()
def cache() -> None:
    """The shared cache (docs/resilience.md)."""


@cache.command(name="invalidate")
@click.argument("tags", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every entry of every replica.")
def cache_invalidate(tags: tuple[str, ...], everything: bool) -> None:
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
        await _invalidate(settings, engine, chosen)

    _run(settings, work)
    click.echo(f"invalidated {', '.join(chosen)}")


@main.group()
def schema() -> None:
    """The GraphQL schema."""


@schema.command(name="print")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the SDL to this file (e.g. schema.graphql) instead of standard output.",
)
def schema_print(output: str | None) -> None:
    """Print the schema in SDL: what schema.graphql at the repository root must hold."""
    from pathlib import Path

    from dataintel.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if output is None:
        click.echo(sdl, nl=False)
    else:
        Path(output).write_text(sdl)


schema.add_command(schema_diff)


@schema.command(name="policy")
def schema_policy() -> None:
    """Print every field with the roles that may read it (@auth), its scopes and rate limit."""
    from dataintel.gateway.policy import PolicyTable, format_policy
    from dataintel.schema import build_graphql_schema

    table = PolicyTable.from_schema(build_graphql_schema())
    click.echo(format_policy(table.rows()))
    anonymous = Settings().effective_anonymous_roles
    click.echo(
        "\nanonymous: requests without a credential; here they also hold the roles "
        f"{', '.join(anonymous) if anonymous else '(none)'} (DATAINTEL_ANONYMOUS_ROLES)."
    )


@main.group()
def openapi() -> None:
    """The OpenAPI document of the REST endpoints (docs/rest.md)."""


@openapi.command(name="print")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the document to this file instead of standard output.",
)
def openapi_print(output: str | None) -> None:
    """Print the OpenAPI 3.1 document that GET /openapi.json serves with these settings."""
    from dataintel.gateway.published_operations import PublishedOperationError
    from dataintel.openapi import openapi_document, render_openapi
    from dataintel.schema import build_schema

    try:
        document = openapi_document(Settings(), build_schema()._schema)
    except PublishedOperationError as error:
        raise click.ClickException(str(error)) from None
    rendered = render_openapi(document)
    if output is None:
        click.echo(rendered.decode(), nl=False)
    else:
        Path(output).write_bytes(rendered)


@main.group()
def audit() -> None:
    """The hash-chained audit log (docs/auth.md)."""


@audit.command(name="verify")
def audit_verify() -> None:
    """Check every entry's hash and link; exit 1 naming the first broken entry."""
    from dataintel.services.audit import ChainReport, SqlAuditService
    from dataintel.store.migrate import upgrade

    async def work(engine: AsyncEngine) -> ChainReport:
        await upgrade(engine)
        return await SqlAuditService(engine).verify()

    report = _run(Settings(), work)
    if report.intact:
        click.echo(f"audit log intact: {report.entries_checked} entries, head {report.head_hash}")
        return
    click.echo(
        f"audit log broken at entry {report.first_broken_id}: {report.problem};"
        f" the {report.entries_checked} entries before it are intact",
        err=True,
    )
    raise SystemExit(1)


@main.command()
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
def backup(destination: Path) -> None:
    """Write a consistent copy of the SQLite store (audit log included) to DESTINATION.

    Safe while the server runs: the copy is one transaction's view, including what is still
    in the write-ahead log, which copying the file would lose. For PostgreSQL, use pg_dump.
    """
    from dataintel.store.backup import BackupError, backup_sqlite, check_backup

    settings = Settings()
    try:
        check_backup(settings.store, destination)
    except BackupError as error:
        raise click.ClickException(str(error)) from None

    async def work(engine: AsyncEngine) -> None:
        await backup_sqlite(engine, destination)

    _run(settings, work)
    size = destination.stat().st_size
    click.echo(f"wrote a consistent copy of the store to {destination} ({size} bytes)")


@main.group()
def users() -> None:
    """Users of the gateway (docs/auth.md)."""


@users.command(name="create")
@click.option("--email", required=True, help="Sign-in email; unique.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["viewer", "analyst", "data_engineer", "privacy_officer", "admin"]),
    help="A role of the user; repeat for several. Default: viewer, plus whatever anonymous"
    " requests hold (viewer and analyst in development), so signing in never loses access.",
)
@click.option("--display-name", default=None, help="Name shown; default: the email's local part.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line) instead of prompting.",
)
@click.option("--no-password", is_flag=True, help="No password: the user signs in by API key.")
def users_create(
    email: str,
    roles: tuple[str, ...],
    display_name: str | None,
    password_stdin: bool,
    no_password: bool,
) -> None:
    """Create a user, e.g. the first admin; migrates the store first."""
    import secrets
    import sys

    from dataintel.errors import GatewayError
    from dataintel.services.audit import SqlAuditService
    from dataintel.services.auth import OPERATOR, NewUser, SqlAuthService, UserRecord
    from dataintel.services.tokens import TokenCodec
    from dataintel.store.migrate import upgrade

    if password_stdin and no_password:
        raise click.UsageError("--password-stdin and --no-password exclude each other.")
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    settings = Settings()
    if not roles:
        roles = tuple(dict.fromkeys(["viewer", *settings.effective_anonymous_roles]))

    async def work(engine: AsyncEngine) -> UserRecord:
        await upgrade(engine)
        # The command line issues no tokens, so it needs no configured signing secret.
        tokens = TokenCodec(
            secret=secrets.token_bytes(32),
            issuer=settings.auth.jwt_issuer,
            audience=settings.auth.jwt_audience,
            lifetime=timedelta(seconds=settings.auth.jwt_lifetime_seconds),
            leeway=timedelta(seconds=settings.auth.jwt_leeway_seconds),
            algorithms=frozenset(settings.auth.jwt_algorithms),
        )
        service = SqlAuthService(engine, SqlAuditService(engine), tokens)
        return await service.create_user(OPERATOR, NewUser(email, display_name, password, roles))

    try:
        user = _run(settings, work)
    except GatewayError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"created user {user.id} {user.email} with roles {', '.join(user.roles)}")


def _run_redis(settings: Settings, work: Callable[[Redis], Awaitable[T]]) -> T:
    """Runs one task on a fresh Redis client and closes it; a missing or down Redis exits 1."""
    import redis.exceptions

    from dataintel.cache.redis_connection import create_redis

    async def main() -> T:
        client = create_redis(settings.redis)
        if client is None:
            raise click.ClickException(
                "DATAINTEL_REDIS_URL is not set: trusted documents live in Redis."
            )
        try:
            return await work(client)
        except (redis.exceptions.RedisError, OSError) as error:
            raise click.ClickException(f"Redis did not answer: {error}") from None
        finally:
            await client.aclose()

    return asyncio.run(main())


@main.group()
def documents() -> None:
    """Trusted documents: persisted queries registered ahead of time (docs/persisted-queries.md)."""


@documents.command(name="register")
@click.argument("manifest", type=click.File("rb"))
def documents_register(manifest: BinaryIO) -> None:
    """Validate a manifest's documents against the schema, then store them all in Redis.

    MANIFEST is a JSON object of id to document (GraphQL Codegen's persisted-documents.json,
    Relay's persisted_queries.json) or an Apollo persisted query manifest; '-' is stdin.
    Nothing is stored unless every document is valid.
    """
    from dataintel.gateway.documents import DocumentCache
    from dataintel.gateway.trusted_documents import (
        ManifestError,
        Registration,
        TrustedDocumentRegistry,
        invalid_documents,
        parse_manifest,
    )
    from dataintel.schema import build_graphql_schema

    settings = Settings()
    try:
        parsed = parse_manifest(manifest.read())
        # The gateway's own document cache: the same rules as requests are checked by.
        checker = DocumentCache.from_settings(
            build_graphql_schema(), settings.graphql, settings.limits
        )
        problems = invalid_documents(parsed, checker)
        if problems:
            raise ManifestError(
                f"{len(problems)} documents are not valid against the schema;"
                " nothing was registered:",
                problems,
            )

        async def work(client: Redis) -> Registration:
            return await TrustedDocumentRegistry(client).register(parsed)

        registration = _run_redis(settings, work)
    except ManifestError as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"registered {len(parsed)} documents: {registration.added} new,"
        f" {registration.already_registered} already registered"
    )


@documents.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a manifest (id to document).")
def documents_list(as_json: bool) -> None:
    """List the trusted documents in Redis: the id clients send, and the operation names."""
    import orjson

    from dataintel.gateway.trusted_documents import (
        TrustedDocumentRegistry,
        display_id,
        operation_names,
    )

    async def work(client: Redis) -> dict[str, str]:
        return await TrustedDocumentRegistry(client).documents()

    found = sorted(_run_redis(Settings(), work).items())
    if as_json:
        manifest = {display_id(key): text for key, text in found}
        click.echo(orjson.dumps(manifest, option=orjson.OPT_INDENT_2).decode())
        return
    for key, text in found:
        click.echo(f"{display_id(key)}  {' '.join(operation_names(text))}")
    click.echo(f"{len(found)} trusted documents", err=True)


documents.add_command(documents_check)

main.add_command(reconcile)
main.add_command(quality)
