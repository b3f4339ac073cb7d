"""`dataintel serve` checks every setting before it touches the store, and says what is wrong
in one line on stderr; production never gets demo data."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from tests.plugins.cli import assert_one_line_error, clean_environment, run_dataintel
from tests.plugins.redis_server import free_port

SECRET = "a-production-signing-secret-of-48-characters-xyz"


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_production_without_a_secret_refuses_before_writing_anything(
    fresh_directory: Path, log_format: str
) -> None:
    environment = clean_environment(
        DATAINTEL_ENVIRONMENT="production", DATAINTEL_LOG_FORMAT=log_format
    )
    result = run_dataintel(["serve", "--port", str(free_port())], fresh_directory, environment)
    assert_one_line_error(result, "DATAINTEL_JWT_SECRET is required")
    assert list(fresh_directory.iterdir()) == []


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("DATAINTEL_ANONYMOUS_ROLES", '["viewer"]', "anonymous requests hold roles (viewer)"),
        ("DATAINTEL_GRAPHIQL", "true", "GraphiQL is on"),
        ("DATAINTEL_AUTO_SEED", "true", "auto-seed would write demo data"),
    ],
)
def test_production_refuses_an_unsafe_setting(
    fresh_directory: Path, variable: str, value: str, fragment: str
) -> None:
    environment = clean_environment(
        DATAINTEL_ENVIRONMENT="production", DATAINTEL_JWT_SECRET=SECRET, **{variable: value}
    )
    result = run_dataintel(["serve", "--port", str(free_port())], fresh_directory, environment)
    assert_one_line_error(result, fragment, "DATAINTEL_ALLOW_UNSAFE_PRODUCTION")
    assert list(fresh_directory.iterdir()) == []


def test_a_short_secret_is_one_line_in_any_environment(fresh_directory: Path) -> None:
    environment = clean_environment(DATAINTEL_JWT_SECRET="short")
    result = run_dataintel(["serve"], fresh_directory, environment)
    assert_one_line_error(result, "DATAINTEL_JWT_SECRET must be at least 32 bytes")
    assert list(fresh_directory.iterdir()) == []


def test_a_bad_feature_view_names_the_file_and_the_entry(
    fresh_directory: Path, tmp_path: Path
) -> None:
    views = tmp_path / "views.yaml"
    views.write_text(
        "views:\n"
        "  - name: recent\n"
        "    entity: customer\n"
        "    ttl: 1d\n"
        "    description: Recent orders.\n"
        "    features:\n"
        "      - name: orders_recently\n"
        "        type: int\n"
        "        description: Orders lately.\n"
        "        aggregate: count\n"
        "        source: orders\n"
        "        window: 3mo\n"
    )
    environment = clean_environment(DATAINTEL_FEATURE_VIEWS_PATH=str(views))
    result = run_dataintel(["serve"], fresh_directory, environment)
    assert_one_line_error(result, str(views), "recent.orders_recently", "window", "3mo")
    assert list(fresh_directory.iterdir()) == []


def test_a_setting_of_the_wrong_type_is_one_line(fresh_directory: Path) -> None:
    result = run_dataintel(["serve"], fresh_directory, clean_environment(DATAINTEL_PORT="http"))
    assert_one_line_error(result, "DATAINTEL_PORT", "'http'")


async def _customers(database_url: str) -> int:
    engine = create_engine(Settings(database_url=database_url).store)
    try:
        async with engine.connect() as connection:
            statement = sa.select(sa.func.count()).select_from(tables.customers)
            count = await connection.scalar(statement)
            return int(count or 0)
    finally:
        await engine.dispose()


def test_production_migrates_but_never_seeds(fresh_directory: Path) -> None:
    port = free_port()
    environment = clean_environment(DATAINTEL_ENVIRONMENT="production", DATAINTEL_JWT_SECRET=SECRET)
    server = subprocess.Popen(
        ["dataintel", "serve", "--port", str(port)],
        cwd=fresh_directory,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and server.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready:
                break
            time.sleep(0.2)
        assert ready, "the server did not become ready in time"
    finally:
        server.terminate()
        server.wait(timeout=30)
    store = fresh_directory / "var" / "dataintel.db"
    assert asyncio.run(_customers(f"sqlite+aiosqlite:///{store}")) == 0


def test_a_bad_catalog_entry_names_the_file_and_the_entry(
    fresh_directory: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("measures:\n  - name: margin\n    unit: currency\n")
    environment = clean_environment(DATAINTEL_ANALYTICS_CATALOG_PATH=str(catalog))
    result = run_dataintel(["serve"], fresh_directory, environment)
    line = assert_one_line_error(result, str(catalog), "measures.0.description: Field required")
    assert "errors.pydantic.dev" not in line
    assert list(fresh_directory.iterdir()) == []
