"""Every command on a fresh directory works, or says in one line what to do."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from tests.plugins.cli import assert_one_line_error, clean_environment, run_dataintel
from tests.plugins.redis_server import free_port
from tests.plugins.store import PostgresServer

WORKING = [
    ["db", "upgrade"],
    ["features", "materialize"],
    ["audit", "verify"],
    ["cache", "invalidate", "--all"],
    ["cache", "invalidate", "features:customer", "customer:42", "dataset:orders"],
    ["users", "create", "--email", "first@example.com", "--no-password"],
    ["backup", "copy.db"],
    ["schema", "print"],
    ["schema", "policy"],
]


@pytest.mark.parametrize("arguments", WORKING, ids=" ".join)
def test_the_command_works_on_a_fresh_directory(
    fresh_directory: Path, arguments: list[str]
) -> None:
    result = run_dataintel(arguments, fresh_directory, clean_environment())
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_materialize_on_an_empty_store_says_to_seed(fresh_directory: Path) -> None:
    result = run_dataintel(["features", "materialize"], fresh_directory, clean_environment())
    assert "run `dataintel seed` first" in result.stderr


def test_seed_prints_a_readable_summary(fresh_directory: Path) -> None:
    result = run_dataintel(["seed"], fresh_directory, clean_environment())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("seeded the demo data at scale 1: 1000 customers,")
    assert "SeedSummary(" not in result.stdout


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["cache", "invalidate", "customers:42"], "'customers:42' is not a cache tag"),
        (["cache", "invalidate", "dataset:nope"], "dataset 'nope' is not one of"),
        (["documents", "list"], "DATAINTEL_REDIS_URL is not set"),
    ],
)
def test_the_command_fails_in_one_line(
    fresh_directory: Path, arguments: list[str], fragment: str
) -> None:
    result = run_dataintel(arguments, fresh_directory, clean_environment())
    assert_one_line_error(result, fragment)


def test_an_unreachable_postgresql_is_one_line(fresh_directory: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/dataintel"
    environment = clean_environment(DATAINTEL_DATABASE_URL=url)
    result = run_dataintel(["db", "upgrade"], fresh_directory, environment)
    assert_one_line_error(result, "cannot reach the store at PostgreSQL 127.0.0.1:")


@pytest.mark.postgres
def test_a_missing_postgresql_database_says_how_to_create_it(
    fresh_directory: Path, postgres_server: PostgresServer
) -> None:
    name = f"dataintel_missing_{secrets.token_hex(4)}"
    url = f"postgres://postgres@{postgres_server.host}:{postgres_server.port}/{name}"
    environment = clean_environment(DATAINTEL_DATABASE_URL=url)
    result = run_dataintel(["db", "upgrade"], fresh_directory, environment)
    assert_one_line_error(result, f"database '{name}' does not exist", "createdb -h 127.0.0.1")


@pytest.mark.postgres
def test_a_postgres_url_is_postgresql(fresh_directory: Path, fresh_postgres_url: str) -> None:
    url = fresh_postgres_url.replace("postgresql+asyncpg://", "postgres://")
    environment = clean_environment(DATAINTEL_DATABASE_URL=url)
    result = run_dataintel(["audit", "verify"], fresh_directory, environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("audit log intact: 0 entries")
