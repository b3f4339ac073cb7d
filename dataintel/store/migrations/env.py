"""Alembic's environment: migrates over the connection that dataintel.store.migrate passes.

Run through the ``alembic`` command (e.g. ``alembic revision --autogenerate``) it opens its
own engine on ``DATAINTEL_DATABASE_URL`` (see dataintel.settings).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from dataintel.store.tables import metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite alters most columns only by copying the table; batch mode does that.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _migrate_on_own_engine() -> None:
    from dataintel.settings import Settings
    from dataintel.store.engine import create_engine

    engine = create_engine(Settings().store)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_migrate)
    finally:
        await engine.dispose()


def _migrate_offline() -> None:
    from dataintel.settings import Settings

    context.configure(
        url=Settings().store.database_url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    if context.is_offline_mode():
        _migrate_offline()
        return
    connection = context.config.attributes.get("connection")
    if connection is None:
        asyncio.run(_migrate_on_own_engine())
    else:
        _migrate(connection)


_run()
