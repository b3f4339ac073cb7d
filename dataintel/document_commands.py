"""The ``dataintel documents`` commands: trusted documents registered, listed and checked."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO

import click

from dataintel.command_runs import run_on_redis
from dataintel.evolution.commands import documents_check
from dataintel.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis


@click.group()
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

        registration = run_on_redis(settings, work)
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

    found = sorted(run_on_redis(Settings(), work).items())
    if as_json:
        manifest = {display_id(key): text for key, text in found}
        click.echo(orjson.dumps(manifest, option=orjson.OPT_INDENT_2).decode())
        return
    for key, text in found:
        click.echo(f"{display_id(key)}  {' '.join(operation_names(text))}")
    click.echo(f"{len(found)} trusted documents", err=True)


documents.add_command(documents_check)
