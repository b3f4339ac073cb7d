"""The ``dataintel`` command: serve, worker, seed, db upgrade, schema and openapi print, audit
verify, backup, users create; the other groups are assembled here from their own modules
(``derived_data_commands``: features, analytics, cache; ``document_commands``: documents;
``check_commands``: reconcile, quality).

An error a person can fix (settings, a catalog file, the store) ends a command with one line
on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import os
import shutil
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from dataintel import __version__
from dataintel.check_commands import quality, reconcile
from dataintel.command_runs import run_on_store
from dataintel.derived_data_commands import analytics, cache, features, materialize_when_empty
from dataintel.document_commands import documents
from dataintel.evolution.commands import schema_diff
from dataintel.preflight import ConfigurationError, describe_validation_error
from dataintel.settings import Settings, deprecated_variables

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from dataintel.store.seed import SeedSummary


def _server_settings() -> Settings:
    """The settings of a long-running process, warning of each deprecated variable set."""
    settings = Settings()
    for old, new in deprecated_variables(os.environ):
        click.echo(f"warning: {old} is deprecated and read as {new}; set {new}", err=True)
    return settings


class _Commands(click.Group):
    """The command group; settings a person can fix are reported in one line."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigurationError as error:
            raise click.ClickException(f"cannot start: {error}") from None
        except ValidationError as error:
            raise click.ClickException(describe_validation_error(error)) from None


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
            await materialize_when_empty(settings, engine)

    run_on_store(settings, prepare)
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

    run_on_store(settings, work)


@main.command(name="seed")
@click.option("--scale", type=click.IntRange(1, 1000), default=1, show_default=True)
def seed_command(scale: int) -> None:
    """Load the deterministic demo data (same scale, same rows; safe to run again)."""
    from dataintel.store.migrate import upgrade
    from dataintel.store.seed import seed

    async def work(engine: AsyncEngine) -> SeedSummary:
        await upgrade(engine)
        return await seed(engine, scale)

    summary = run_on_store(Settings(), work)
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

    click.echo(f"store at revision {run_on_store(Settings(), work)}")


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
    from dataintel.schema import build_graphql_schema

    try:
        document = openapi_document(Settings(), build_graphql_schema())
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

    report = run_on_store(Settings(), work)
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

    run_on_store(settings, work)
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
        user = run_on_store(settings, work)
    except GatewayError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"created user {user.id} {user.email} with roles {', '.join(user.roles)}")


main.add_command(features)
main.add_command(analytics)
main.add_command(cache)
main.add_command(documents)
main.add_command(reconcile)
main.add_command(quality)
