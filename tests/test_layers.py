"""Imports point down the layers (DESIGN.md): read from every module's own import statements."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dataintel"

ABOVE_SERVICES = (
    "strawberry",
    "dataintel.app",
    "dataintel.http",
    "dataintel.gateway",
    "dataintel.schema",
    "dataintel.resolvers",
    "dataintel.directives",
    "dataintel.loaders",
)
VOCABULARY = ("rbac.py", "audit_events.py", "page_size.py")
"""Modules the gateway and the services share: they import nothing of the project."""

RULES: list[tuple[str, tuple[str, ...]]] = [
    # The gateway reaches the services only through Protocols it declares and the app wires.
    ("gateway", ("dataintel.services", "dataintel.app", "dataintel.http")),
    ("services", ABOVE_SERVICES),
    ("store", (*ABOVE_SERVICES, "dataintel.services", "dataintel.cache")),
    ("cache", (*ABOVE_SERVICES, "dataintel.services")),
    *((name, ("dataintel",)) for name in VOCABULARY),
]


def _modules(place: str) -> Iterator[Path]:
    path = PACKAGE / place
    yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imported(path: Path, root: Path = PACKAGE) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every import in a module of ``root``, relative ones absolute."""
    package = path.relative_to(root.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            # ``from dataintel import services`` imports the package named by the alias.
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _within(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


@pytest.mark.parametrize(("place", "forbidden"), RULES, ids=[place for place, _ in RULES])
def test_imports_point_down(place: str, forbidden: tuple[str, ...]) -> None:
    assert any(_modules(place)), f"dataintel/{place} is gone: update the rule"
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
        for path in _modules(place)
        for line, name in _imported(path)
        if any(_within(name, prefix) for prefix in forbidden)
    ]
    assert offending == []


def test_the_rule_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "dataintel" / "gateway" / "example.py"
    module.parent.mkdir(parents=True)
    module.write_text("from dataintel import services\nfrom ..services.audit import AuditEvent\n")
    names = [name for _, name in _imported(module, tmp_path / "dataintel")]
    assert names == ["dataintel.services", "dataintel.services.audit.AuditEvent"]
