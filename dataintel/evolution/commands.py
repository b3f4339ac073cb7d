"""The command line of schema evolution: ``schema diff`` and ``documents check``.

Registered on the ``schema`` and ``documents`` groups of ``dataintel.cli``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from dataintel.settings import Settings

if TYPE_CHECKING:
    from graphql import GraphQLSchema

    from dataintel.evolution.changes import SchemaChange


class SchemaNotLoaded(click.ClickException):
    """A schema source that could not be read: exit 2, so 1 keeps meaning 'breaking'."""

    exit_code = 2


def _headers(values: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, separator, content = value.partition(":")
        if not separator or not name.strip():
            raise click.BadParameter(f"'{value}' is not 'Name: value'.", param_hint="--header")
        headers[name.strip()] = content.strip()
    return headers


def _load(source: str, headers: Mapping[str, str]) -> GraphQLSchema:
    from dataintel.evolution.schema_source import SchemaSourceError, load_schema

    try:
        return asyncio.run(load_schema(source, headers=headers))
    except SchemaSourceError as error:
        raise SchemaNotLoaded(str(error)) from None


def format_changes(changes: list[SchemaChange], acknowledged: frozenset[str]) -> str:
    """The changes one a line, most critical first, with a summary line."""
    from dataintel.evolution.changes import Criticality

    counts = dict.fromkeys(Criticality, 0)
    for change in changes:
        counts[change.criticality] += 1
    summary = ", ".join(f"{counts[level]} {level.value}" for level in Criticality)
    if not changes:
        return "no changes"
    width = max(len(change.coordinate) for change in changes)
    lines = []
    for change in changes:
        label = change.criticality.value.upper()
        note = ""
        if change.criticality is Criticality.BREAKING and change.coordinate in acknowledged:
            note = " (acknowledged in the changelog)"
        lines.append(f"{label:<10}{change.coordinate:<{width}}  {change.message}{note}")
    return "\n".join([*lines, "", summary])


@click.command(name="diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--changelog",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Breaking changes whose coordinate is listed under a 'Breaking' heading of this"
    " file's Unreleased section do not fail (docs/schema-evolution.md).",
)
@click.option(
    "--header",
    "-H",
    "header_values",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Sent with introspection to a URL, e.g. -H 'Authorization: Bearer ...'; repeatable.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the changes as a JSON list (criticality, kind, coordinate, message, acknowledged).",
)
def schema_diff(
    old: str, new: str, changelog: str | None, header_values: tuple[str, ...], as_json: bool
) -> None:
    """Classify every change from OLD to NEW as breaking, dangerous or safe.

    OLD and NEW are SDL files, introspection result files (JSON), or the URL of a running
    gateway's GraphQL endpoint, which is introspected. Exits 1 when a change is breaking
    (and not acknowledged with --changelog), 2 when a schema cannot be read.
    """
    from dataintel.evolution.changelog import acknowledged_coordinates, unacknowledged
    from dataintel.evolution.changes import Criticality, compare_schemas

    headers = _headers(header_values)
    changes = compare_schemas(_load(old, headers), _load(new, headers))
    acknowledged = (
        acknowledged_coordinates(Path(changelog).read_text()) if changelog else frozenset()
    )
    failing = unacknowledged(changes, acknowledged)
    if as_json:
        import orjson

        rows = [
            {
                "criticality": change.criticality.value,
                "kind": change.kind,
                "coordinate": change.coordinate,
                "message": change.message,
                "acknowledged": change.criticality is Criticality.BREAKING
                and change not in failing,
            }
            for change in changes
        ]
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(format_changes(changes, acknowledged))
    if failing:
        click.echo(
            f"{len(failing)} breaking changes"
            + (f" not listed under 'Breaking' in {changelog}" if changelog else ""),
            err=True,
        )
        raise SystemExit(1)


async def _registered_documents(settings: Settings) -> dict[str, str]:
    from dataintel.cache.redis_connection import create_redis
    from dataintel.gateway.trusted_documents import TrustedDocumentRegistry

    client = create_redis(settings.redis)
    if client is None:
        return {}
    try:
        return await TrustedDocumentRegistry(client).documents()
    finally:
        await client.aclose()


@click.command(name="check")
@click.option(
    "--schema",
    "schema_source",
    default=None,
    metavar="FILE|URL",
    help="The candidate schema: SDL, introspection JSON or a gateway URL; default: this"
    " version's schema.",
)
@click.option(
    "--manifest",
    "manifests",
    multiple=True,
    type=click.File("rb"),
    help="Also check the documents of this manifest (as for 'documents register'); repeatable.",
)
@click.option(
    "--readme",
    type=click.Path(dir_okay=False),
    default="README.md",
    show_default=True,
    help="Also check the ```graphql blocks of this page (skipped when it does not exist).",
)
@click.option(
    "--no-registry", is_flag=True, help="Do not read the trusted documents registered in Redis."
)
@click.option("--header", "-H", "header_values", multiple=True, metavar="'NAME: VALUE'")
def documents_check(
    schema_source: str | None,
    manifests: tuple[BinaryIO, ...],
    readme: str,
    no_registry: bool,
    header_values: tuple[str, ...],
) -> None:
    """Validate the trusted documents and the README's operations against a candidate schema.

    Names every document that would stop working and why, and those that still use
    deprecated fields or values; exits 1 when a document would stop working.
    The registered documents are read from Redis (DATAINTEL_REDIS_URL).
    """
    import redis.exceptions

    from dataintel.evolution.document_check import (
        broken_documents,
        deprecated_uses,
        readme_operations,
    )
    from dataintel.gateway.trusted_documents import (
        ManifestError,
        display_id,
        operation_names,
        parse_manifest,
    )
    from dataintel.schema import build_graphql_schema

    settings = Settings()
    schema = (
        _load(schema_source, _headers(header_values)) if schema_source else build_graphql_schema()
    )
    documents: dict[str, str] = {}
    if not no_registry:
        if settings.redis.url is None:
            click.echo("DATAINTEL_REDIS_URL is not set: no registered documents to check", err=True)
        else:
            try:
                registered = asyncio.run(_registered_documents(settings))
            except (redis.exceptions.RedisError, OSError) as error:
                raise click.ClickException(f"Redis did not answer: {error}") from None
            documents.update({display_id(key): text for key, text in registered.items()})
    for manifest in manifests:
        try:
            parsed = parse_manifest(manifest.read())
        except ManifestError as error:
            raise click.ClickException(f"{manifest.name}: {error}") from None
        documents.update({f"{manifest.name}:{display_id(k)}": t for k, t in parsed.items()})
    readme_path = Path(readme)
    if readme_path.is_file():
        documents.update(readme_operations(readme_path.read_text(), readme_path.name))
    broken = broken_documents(documents, schema)
    for key, problems in broken.items():
        names = " ".join(operation_names(documents[key])) or "(no operation)"
        click.echo(f"BROKEN {key}  {names}")
        for problem in problems:
            click.echo(f"  {problem}")
    # Not a failure: what the deprecation's announcement must reach before the removal.
    for key, coordinates in deprecated_uses(documents, schema).items():
        names = " ".join(operation_names(documents[key])) or "(no operation)"
        click.echo(f"DEPRECATED {key}  {names}  uses {', '.join(coordinates)}")
    click.echo(f"{len(documents) - len(broken)} of {len(documents)} documents still valid")
    if broken:
        raise SystemExit(1)
