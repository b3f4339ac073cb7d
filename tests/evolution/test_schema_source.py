"""A schema to compare is read from SDL, from an introspection result, or refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from graphql import build_schema, introspection_from_schema

from dataintel.evolution.changes import compare_schemas
from dataintel.evolution.schema_source import SchemaSourceError, load_schema

COMMITTED = Path(__file__).parents[2] / "schema.graphql"


@pytest.mark.parametrize("wrapped", [True, False], ids=["response", "data only"])
async def test_an_introspection_file_is_the_same_schema(tmp_path: Path, wrapped: bool) -> None:
    schema = build_schema(COMMITTED.read_text())
    data = introspection_from_schema(schema)
    path = tmp_path / "introspection.json"
    path.write_text(json.dumps({"data": data} if wrapped else data))
    assert compare_schemas(schema, await load_schema(str(path))) == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file"),
        ("{not json", "did not give JSON"),
        ('{"data": {"types": []}}', "holds no introspection result"),
        ("type Query { a: Missing }", "is not a valid SDL schema"),
    ],
)
async def test_an_unusable_source_says_why(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "schema.graphql"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SchemaSourceError, match=problem):
        await load_schema(str(path))


async def test_a_url_that_does_not_answer() -> None:
    from tests.plugins.redis_server import free_port

    with pytest.raises(SchemaSourceError, match="did not answer"):
        await load_schema(f"http://127.0.0.1:{free_port()}/graphql")
