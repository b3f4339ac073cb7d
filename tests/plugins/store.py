"""Store fixtures: throwaway PostgreSQL databases, migrated engines, a seeded SQLite copy.

Fixtures that set up databases are synchronous and run their async work with
``asyncio.run``, so that tests of any event loop scope can use them; what they hand out
(URLs, paths) holds no connection tied to a loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from dataintel.store.seed import SeedSummary, seed

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
POSTGRES_CONNECT_TIMEOUT_SECONDS = 3.0

DIGESTED_TABLES = (*tables.DEMO_TABLES, tables.roles)
"""The tables the seed writes, whose digests must not depend on run or dialect."""

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def sqlite_url(path: Path) -> str:
    """The store URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


class PostgresServer:
    """The test PostgreSQL server: creates and drops throwaway databases on it."""

    def __init__(self, host: str, port: int, user: str) -> None:
        self.host = host
        self.port = port
        self.user = user

    def url(self, database: str) -> str:
        """The store URL of one database on this server."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    def _admin_engine(self) -> AsyncEngine:
        # CREATE/DROP DATABASE cannot run inside a transaction, hence autocommit.
        return create_async_engine(
            self.url("postgres"),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
            connect_args={"timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
        )

    async def _admin(self, *statements: str) -> None:
        engine = self._admin_engine()
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(sa.text(statement))
        finally:
            await engine.dispose()

    async def check(self) -> None:
        """Raises if the server does not answer."""
        await self._admin("SELECT 1")

    async def create_database(self, template: str | None = None) -> str:
        """Creates a database with a fresh name, empty or a copy of ``template``; its name.

        The name is random, so that concurrent sessions (pytest-xdist's workers, another
        checkout's suite) on the same server never meet.
        """
        name = f"dataintel_test_{secrets.token_hex(6)}"
        copied = f' TEMPLATE "{template}"' if template else ""
        await self._admin(f'CREATE DATABASE "{name}"{copied}')
        return name

    async def drop_database(self, name: str) -> None:
        """Drops a database, first ending the connections that are still open on it."""
        await self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            f'DROP DATABASE IF EXISTS "{name}"',
        )


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The PostgreSQL server on 127.0.0.1:5432; skips (fails when CI is set) if it is down."""
    server = PostgresServer(POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER)
    try:
        _run(server.check())
    except (OSError, TimeoutError, sa.exc.SQLAlchemyError) as error:
        reason = (
            f"PostgreSQL is not reachable at {POSTGRES_HOST}:{POSTGRES_PORT} "
            f"as user {POSTGRES_USER} ({type(error).__name__}: {error})"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A throwaway PostgreSQL database for the whole session, dropped at its end."""
    name = _run(postgres_server.create_database())
    yield postgres_server.url(name)
    _run(postgres_server.drop_database(name))


@pytest.fixture
def fresh_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty PostgreSQL database of this test alone, dropped after it."""
    name = _run(postgres_server.create_database())
    yield postgres_server.url(name)
    _run(postgres_server.drop_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty store of this test alone: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "store.db")
    # Asked for lazily, so that the SQLite case runs without a PostgreSQL server.
    url: str = request.getfixturevalue("fresh_postgres_url")
    return url


@pytest.fixture
async def store_engine(store_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a freshly migrated store (both dialects), disposed after the test."""
    engine = create_engine(Settings(database_url=store_url).store)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class SeededTemplate:
    """A SQLite file migrated and seeded at scale 1, and what the seed reported."""

    path: Path
    summary: SeedSummary


async def _migrate_and_seed(url: str, scale: int) -> SeedSummary:
    engine = create_engine(Settings(database_url=url).store)
    try:
        await upgrade(engine)
        summary = await seed(engine, scale)
        if engine.dialect.name == "sqlite":
            async with engine.connect() as connection:
                # Moves everything from the write-ahead log into the file, so copying the
                # file alone copies the whole store.
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return summary
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def seeded_postgres_template(postgres_server: PostgresServer) -> Iterator[str]:
    """The name of the session's PostgreSQL database seeded at scale 1; never connect to it.

    Seeding takes seconds; copying a database with CREATE DATABASE ... TEMPLATE takes a
    fraction of one, and needs that nothing is connected to the template meanwhile.
    """
    name = _run(postgres_server.create_database())
    _run(_migrate_and_seed(postgres_server.url(name), scale=1))
    yield name
    _run(postgres_server.drop_database(name))


@pytest.fixture
def seeded_postgres_url(
    postgres_server: PostgresServer, seeded_postgres_template: str
) -> Iterator[str]:
    """This test's own PostgreSQL database, migrated and seeded at scale 1 (free to change)."""
    name = _run(postgres_server.create_database(template=seeded_postgres_template))
    yield postgres_server.url(name)
    _run(postgres_server.drop_database(name))


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> SeededTemplate:
    """The session's seeded SQLite template (scale 1) with its seed summary; never write to it."""
    path = tmp_path_factory.mktemp("seeded_sqlite") / "template.db"
    summary = _run(_migrate_and_seed(sqlite_url(path), scale=1))
    return SeededTemplate(path, summary)


@pytest.fixture(scope="session")
def seeded_sqlite_template(seeded_sqlite: SeededTemplate) -> Path:
    """The path of a SQLite file migrated and seeded at scale 1, once per session."""
    return seeded_sqlite.path


@pytest.fixture
def seeded_sqlite_url(seeded_sqlite_template: Path, tmp_path: Path) -> str:
    """The URL of this test's own copy of the seeded SQLite store (free to change)."""
    copy = tmp_path / "dataintel.db"
    shutil.copyfile(seeded_sqlite_template, copy)
    return sqlite_url(copy)


def _canonical(value: object) -> str:
    if isinstance(value, datetime):
        # A naive or non-UTC moment would be a bug of UTCDateTime, not a different value.
        assert value.tzinfo is UTC, f"{value!r} is not aware UTC"
        return f"datetime:{value.isoformat()}"
    if isinstance(value, float):
        return f"float:{value!r}"
    return f"{type(value).__name__}:{value}"


async def table_digests(
    engine: AsyncEngine, digested: Iterable[sa.Table] = DIGESTED_TABLES
) -> dict[str, str]:
    """Per table, its row count and a hash of its rows that ignores their order."""
    digests: dict[str, str] = {}
    async with engine.connect() as connection:
        for table in digested:
            row_hashes = sorted(
                hashlib.sha256("|".join(map(_canonical, row)).encode()).hexdigest()
                for row in (await connection.execute(sa.select(table))).all()
            )
            combined = hashlib.sha256("".join(row_hashes).encode()).hexdigest()
            digests[table.name] = f"{len(row_hashes)} rows {combined}"
    return digests
