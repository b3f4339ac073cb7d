"""The published operations file: checked against the schema when the gateway starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import OperationType

from dataintel.gateway.published_operations import (
    PublishedOperationError,
    load_published_operations,
)
from dataintel.preflight import ConfigurationError, check_settings
from dataintel.schema import build_schema
from dataintel.settings import Settings

SCHEMA = build_schema()._schema


def test_the_built_in_operations_are_the_readme_examples() -> None:
    operations = {operation.path: operation for operation in load_published_operations(SCHEMA)}
    assert {
        "/status",
        "/orders/recent",
        "/analytics/revenue-by-region",
        "/customers/{tier}/features",
        "/auth/token",
    } == set(operations)
    assert operations["/auth/token"].operation_type == OperationType.MUTATION
    assert operations["/auth/token"].method == "POST"
    tier = operations["/customers/{tier}/features"].variables[0]
    assert (tier.name, tier.location, tier.required) == ("tier", "path", True)


def test_a_file_adds_and_replaces_by_path(tmp_path: Path) -> None:
    extra = tmp_path / "operations.yaml"
    extra.write_text(
        """operations:
  - path: /status
    operation: Version
    summary: Just the version.
    document: 'query Version { status { version } }'
  - path: /products/{id}
    operation: Product
    summary: One product.
    document: 'query Product($id: ID!) { product(id: $id) { name } }'
"""
    )
    operations = {o.path: o for o in load_published_operations(SCHEMA, extra)}
    assert operations["/status"].operation_name == "Version"
    assert operations["/products/{id}"].variables[0].location == "path"
    assert "/orders/recent" in operations


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "path: orders\n    operation: X\n    summary: s\n    document: 'query X { me { id } }'",
            "'path'",
        ),
        ("path: /x\n    operation: X\n    summary: s\n    document: 'query X { nope }'", "nope"),
        (
            "path: /x\n    operation: Y\n    summary: s\n    document: 'query X { me { id } }'",
            "no operation named Y",
        ),
        (
            "path: /x/{id}\n    operation: X\n    summary: s\n"
            "    document: 'query X { me { id } }'",
            "unknown variables ['id']",
        ),
        (
            "path: /x/{id}\n    operation: X\n    summary: s\n"
            "    document: 'query X($id: String) { orders(after: $id) { totalCount } }'",
            "must be non-null",
        ),
        ("path: /x\n    operation: X\n    document: 'query X { me { id } }'", "'summary'"),
        (
            "path: /x\n    operation: X\n    summary: s\n    variables: {y: {minimum: 1}}\n"
            "    document: 'query X { me { id } }'",
            "unknown ones ['y']",
        ),
        (
            "path: /x\n    operation: X\n    summary: s\n    variables: {id: {format: uuid}}\n"
            "    document: 'query X($id: ID!) { product(id: $id) { name } }'",
            "unknown keys ['format']",
        ),
    ],
)
def test_mistakes_stop_the_start_naming_the_entry(tmp_path: Path, entry: str, message: str) -> None:
    broken = tmp_path / "operations.yaml"
    broken.write_text(f"operations:\n  - {entry}\n")
    with pytest.raises(PublishedOperationError) as raised:
        load_published_operations(SCHEMA, broken)
    assert message in str(raised.value)
    assert "operations.yaml, operation 0" in str(raised.value)


def test_serve_refuses_to_start_on_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "operations.yaml"
    broken.write_text("operations: [{path: /x}]\n")
    with pytest.raises(ConfigurationError) as raised:
        check_settings(Settings(rest_operations_path=broken))
    assert str(raised.value).startswith("published operations: ")
    assert "operations.yaml, operation 0 (/x)" in str(raised.value)
    check_settings(Settings(rest_operations_path=broken, rest_enabled=False))
