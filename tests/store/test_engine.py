"""The engine: SQLite pragmas and folder, PostgreSQL pool and timeouts, nothing at import."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from tests.plugins.store import sqlite_url


async def test_sqlite_creates_its_folder_and_sets_its_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there" / "store.db"
    engine = create_engine(
        Settings(database_url=sqlite_url(path), database_timeout_seconds=2.5).store
    )
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("foreign_keys", "journal_mode", "busy_timeout")
            }
    finally:
        await engine.dispose()
    assert path.exists()
    assert pragmas == {"foreign_keys": 1, "journal_mode": "wal", "busy_timeout": 2500}


async def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(Settings(database_url=sqlite_url(tmp_path / "store.db")).store)
    order = {
        "id": 1,
        "customer_id": 404,
        "status": "placed",
        "channel": "web",
        "placed_at": datetime(2025, 1, 1, tzinfo=UTC),
        "total_cents": 100,
        "currency": "USD",
    }
    try:
        await upgrade(engine)
        async with engine.begin() as connection:
            with pytest.raises(sa.exc.IntegrityError):
                await connection.execute(sa.insert(tables.orders), [order])
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgresql_takes_its_pool_and_driver_from_the_settings(postgres_url: str) -> None:
    # A DSN without a driver gets asyncpg, never a blocking driver.
    url = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    engine = create_engine(Settings(database_url=url, database_pool_size=3).store)
    try:
        async with engine.connect() as connection:
            name = (await connection.exec_driver_sql("SHOW application_name")).scalar_one()
        assert engine.dialect.driver == "asyncpg"
        assert engine.pool.size() == 3  # type: ignore[attr-defined]
        assert name == "dataintel"
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgresql_statements_time_out(postgres_url: str) -> None:
    engine = create_engine(Settings(database_url=postgres_url, database_timeout_seconds=0.2).store)
    try:
        async with engine.connect() as connection:
            with pytest.raises(TimeoutError):
                await connection.exec_driver_sql("SELECT pg_sleep(5)")
    finally:
        await engine.dispose()


def test_an_unsupported_store_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported store"):
        create_engine(Settings(database_url="mysql+aiomysql://localhost/dataintel").store)


def test_importing_the_store_opens_nothing(tmp_path: Path) -> None:
    script = (
        "import dataintel.store, dataintel.store.seed, dataintel.store.migrate, pathlib, sys;"
        "sys.exit(1 if any(pathlib.Path('.').iterdir()) else 0)"
    )
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True)
