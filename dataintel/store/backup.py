"""A consistent copy of the SQLite store while it is in use, for backups of the audit log.

Copying the file alone loses what is still in the write-ahead log (``-wal``); VACUUM INTO
writes one transaction's view of the whole database, log included, to a new file.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.settings import StoreSettings


class BackupError(Exception):
    """The copy cannot be made; the message says why and what to do."""


def check_backup(store: StoreSettings, target: Path) -> None:
    """Raises BackupError unless the store is SQLite and ``target`` is a new file."""
    if store.sqlite_path is None:
        raise BackupError(
            "the store is PostgreSQL: back it up with pg_dump, e.g."
            " `pg_dump --format=custom --file=dataintel.dump DATABASE`"
        )
    if target.exists():
        raise BackupError(f"{target} exists already: name a new file")
    if not target.parent.is_dir():
        raise BackupError(f"directory {target.parent} does not exist")


async def backup_sqlite(engine: AsyncEngine, target: Path) -> None:
    """Writes the whole SQLite store to ``target`` as one consistent snapshot."""
    async with engine.connect() as connection:
        await connection.execute(sa.text("VACUUM INTO :target"), {"target": str(target)})
