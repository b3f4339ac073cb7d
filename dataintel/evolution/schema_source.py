"""A schema to compare, from an SDL file, an introspection result file, or a running gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from graphql import (
    GraphQLError,
    GraphQLSchema,
    build_client_schema,
    build_schema,
    get_introspection_query,
)

INTROSPECTION_QUERY = get_introspection_query(
    descriptions=True,
    directive_is_repeatable=True,
    input_value_deprecation=True,
)


class SchemaSourceError(Exception):
    """A schema that could not be read; the message says from where and why."""


def is_url(source: str) -> bool:
    """Whether a source names a running gateway rather than a file."""
    return source.startswith(("http://", "https://"))


async def load_schema(
    source: str,
    *,
    headers: Mapping[str, str] | None = None,
    client: httpx.AsyncClient | None = None,
) -> GraphQLSchema:
    """The schema of a file (SDL or introspection JSON) or of a gateway's URL (introspection)."""
    if is_url(source):
        return await _introspect(source, headers or {}, client)
    return await asyncio.to_thread(read_schema_file, source)


def read_schema_file(source: str) -> GraphQLSchema:
    """The schema in a file of SDL or of an introspection result (JSON)."""
    try:
        text = Path(source).read_text()
    except OSError as error:
        raise SchemaSourceError(f"{source}: {error.strerror or error}") from None
    if text.lstrip().startswith("{"):
        return _from_introspection(source, _json(source, text.encode()))
    try:
        return build_schema(text)
    except (GraphQLError, TypeError) as error:
        raise SchemaSourceError(f"{source} is not a valid SDL schema: {error}") from None


async def _introspect(
    url: str, headers: Mapping[str, str], client: httpx.AsyncClient | None
) -> GraphQLSchema:
    request_headers = {"Accept": "application/json", **headers}
    body = {"query": INTROSPECTION_QUERY, "operationName": "IntrospectionQuery"}
    try:
        if client is not None:
            response = await client.post(url, json=body, headers=request_headers)
        else:
            async with httpx.AsyncClient(timeout=30.0) as own_client:
                response = await own_client.post(url, json=body, headers=request_headers)
    except httpx.HTTPError as error:
        raise SchemaSourceError(f"{url} did not answer: {error}") from None
    result = _json(url, response.content)
    errors = result.get("errors")
    if errors:
        messages = "; ".join(str(error.get("message")) for error in errors)
        raise SchemaSourceError(
            f"{url} refused introspection ({response.status_code}): {messages}"
            " (a production gateway needs a credential: --header 'Authorization: Bearer ...')"
        )
    return _from_introspection(url, result)


def _json(source: str, raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise SchemaSourceError(f"{source} did not give JSON: {error.msg}") from None
    if not isinstance(data, dict):
        raise SchemaSourceError(f"{source} did not give a JSON object.")
    return data


def _from_introspection(source: str, result: dict[str, Any]) -> GraphQLSchema:
    # Either a whole response ({"data": {"__schema": ...}}) or only its data.
    data = result.get("data", result)
    if not isinstance(data, dict) or "__schema" not in data:
        raise SchemaSourceError(f"{source} holds no introspection result (__schema).")
    try:
        return build_client_schema(data)  # type: ignore[arg-type]
    except (GraphQLError, TypeError) as error:
        raise SchemaSourceError(
            f"{source} holds an invalid introspection result: {error}"
        ) from None
