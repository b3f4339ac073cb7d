"""Migrations: an empty store reaches the head revision, whose schema is exactly the tables."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.migrate import alembic_config, current_revision, upgrade


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, tables.metadata))


def table_names(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def downgrade_to_base(connection: sa.Connection) -> None:
    command.downgrade(alembic_config(connection), "base")


async def test_a_new_store_has_no_revision(store_url: str) -> None:
    engine = create_engine(Settings(database_url=store_url).store)
    try:
        assert await current_revision(engine) is None
    finally:
        await engine.dispose()


async def test_upgrade_reaches_the_head_and_again_changes_nothing(
    store_engine: AsyncEngine,
) -> None:
    assert head_revision() == "0009"
    assert await current_revision(store_engine) == head_revision()
    await upgrade(store_engine)
    assert await current_revision(store_engine) == head_revision()


async def test_the_migrated_schema_is_exactly_the_tables(store_engine: AsyncEngine) -> None:
    async with store_engine.connect() as connection:
        assert await connection.run_sync(table_names) == {
            *tables.metadata.tables,
            "alembic_version",
        }
        assert await connection.run_sync(schema_differences) == []


async def test_downgrade_then_upgrade_gives_the_same_schema(store_engine: AsyncEngine) -> None:
    async with store_engine.begin() as connection:
        await connection.run_sync(downgrade_to_base)
    async with store_engine.connect() as connection:
        assert await connection.run_sync(table_names) == {"alembic_version"}
    assert await current_revision(store_engine) is None
    await upgrade(store_engine)
    async with store_engine.connect() as connection:
        assert await connection.run_sync(schema_differences) == []
