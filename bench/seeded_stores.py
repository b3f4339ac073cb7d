"""Seeded stores kept between bench runs: seeding at ``--scale 100`` takes minutes, once.

A store is keyed by its dialect, scale and the seed's data version (``SEED_DATA_VERSION``),
so a change to the demo rows seeds a new one. SQLite stores are files under
``var/bench/``; PostgreSQL stores are databases named ``rollups_bench_s<scale>_v<version>``
on the server given. The seed is one transaction, so a store that holds demo rows holds all
of them (an interrupted seed leaves none and is seeded again).
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from dataintel.store.seed import SEED_DATA_VERSION, is_seeded, seed

CACHE_DIRECTORY = Path(__file__).resolve().parents[1] / "var" / "bench"


def postgres_database_name(scale: int) -> str:
    """The name of the PostgreSQL bench database of a scale (and seed data version)."""
    return f"rollups_bench_s{scale}_v{SEED_DATA_VERSION}"


async def _create_database(server_url: str, name: str) -> None:
    admin = create_async_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            found = await connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if found is None:
                await connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


async def seeded_store_url(scale: int, postgres_server_url: str | None = None) -> tuple[str, float]:
    """The URL of a migrated store seeded at ``scale``, and the seconds spent seeding now."""
    if postgres_server_url is None:
        CACHE_DIRECTORY.mkdir(parents=True, exist_ok=True)
        path = CACHE_DIRECTORY / f"rollups-scale-{scale}-seed-v{SEED_DATA_VERSION}.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        name = postgres_database_name(scale)
        await _create_database(postgres_server_url, name)
        url = f"{postgres_server_url}/{name}"
    engine = create_engine(Settings(database_url=url, database_timeout_seconds=3600).store)
    try:
        await upgrade(engine)
        if await is_seeded(engine):
            return url, 0.0
        started = time.perf_counter()
        await seed(engine, scale)
        return url, time.perf_counter() - started
    finally:
        await engine.dispose()
