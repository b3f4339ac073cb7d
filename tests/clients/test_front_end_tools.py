"""The real front-end tools (npm, pinned in web/clients) accept the schema and its documents.

relay-compiler compiles paginated @connection fragments (orders, a customer's orders, in
both directions), @refetchable fragments on Customer and Order, and a node query; it
refuses all of them without Global Object Identification and complete connections.
graphql-codegen generates TypeScript types for the operations in README.md and
docs/clients.md.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.server import REPO

CLIENTS = REPO / "web" / "clients"
TOOL_SECONDS = 180
DOCUMENTED = (REPO / "README.md", REPO / "docs" / "clients.md")


def tool(name: str) -> Path:
    """A binary of web/clients, installed by `make clients`."""
    path = CLIENTS / "node_modules" / ".bin" / name
    if shutil.which("node") is None or not path.exists():
        pytest.fail(f"{name} is not installed: run `make clients` (needs Node.js)")
    return path


def print_schema(target: Path) -> None:
    """`dataintel schema print --output target`, as a user would run it."""
    subprocess.run(
        [sys.executable, "-m", "dataintel", "schema", "print", "--output", str(target)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=TOOL_SECONDS,
    )


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TOOL_SECONDS)


def documented_operations() -> list[str]:
    """Every ```graphql block of the README and docs/clients.md."""
    blocks = []
    for path in DOCUMENTED:
        blocks += re.findall(r"```graphql\n(.*?)```", path.read_text(), re.S)
    return blocks


def test_relay_compiler_accepts_the_fragments(tmp_path: Path) -> None:
    project = tmp_path / "relay"
    shutil.copytree(CLIENTS / "relay", project, ignore=shutil.ignore_patterns("__generated__"))
    print_schema(project / "schema.graphql")
    completed = run([str(tool("relay-compiler"))], project)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    generated = {path.name for path in (project / "src" / "__generated__").iterdir()}
    for artifact in (
        "OrdersListPaginationQuery.graphql.ts",
        "CustomerOrdersPaginationQuery.graphql.ts",
        "CustomerProfileRefetchQuery.graphql.ts",
        "OrderSummaryRefetchQuery.graphql.ts",
        "NodeLookupQuery.graphql.ts",
    ):
        assert artifact in generated
    # Refetching a Customer or an Order goes through node(id:).
    generated_dir = project / "src" / "__generated__"
    refetch = (generated_dir / "CustomerProfileRefetchQuery.graphql.ts").read_text()
    assert "node(id: $id)" in refetch


def test_graphql_codegen_types_the_documented_operations(tmp_path: Path) -> None:
    print_schema(tmp_path / "schema.graphql")
    operations = documented_operations()
    assert len(operations) >= 5
    for number, operation in enumerate(operations):
        (tmp_path / f"operation_{number}.graphql").write_text(operation)
    output = tmp_path / "generated" / "operations.ts"
    config = {
        "schema": str(tmp_path / "schema.graphql"),
        "documents": [str(tmp_path / "operation_*.graphql")],
        "generates": {str(output): {"plugins": ["typescript", "typescript-operations"]}},
    }
    (tmp_path / "codegen.json").write_text(json.dumps(config))
    codegen = tool("graphql-codegen")
    completed = run([str(codegen), "--config", str(tmp_path / "codegen.json")], CLIENTS)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    generated = output.read_text()
    assert "export type RecentOrdersQuery = " in generated
    assert "export type CustomerRefetchQuery = " in generated
