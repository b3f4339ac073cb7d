"""`dataintel backup` copies a SQLite store in use without losing what is still in its WAL."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import sqlalchemy as sa

from dataintel.services.audit import AuditEvent, SqlAuditService
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from tests.plugins.cli import assert_one_line_error, clean_environment, run_dataintel
from tests.plugins.store import sqlite_url

ENTRIES = 5


async def audit_entries(path: Path) -> int:
    engine = create_engine(Settings(database_url=sqlite_url(path)).store)
    try:
        async with engine.connect() as connection:
            statement = sa.select(sa.func.count()).select_from(tables.audit_log)
            return int(await connection.scalar(statement) or 0)
    finally:
        await engine.dispose()


async def test_the_backup_holds_entries_still_in_the_wal(
    seeded_sqlite_url: str, fresh_directory: Path
) -> None:
    store = Path(seeded_sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    environment = clean_environment(DATAINTEL_DATABASE_URL=seeded_sqlite_url)
    # An open engine stands for the running server: SQLite checkpoints the WAL into the
    # file only when the last connection closes, which a server never does.
    engine = create_engine(Settings(database_url=seeded_sqlite_url).store)
    try:
        audit = SqlAuditService(engine)
        for number in range(ENTRIES):
            await audit.append(AuditEvent("operator", "test.entry", f"entry:{number}", "success"))
        naive_copy = fresh_directory / "copied.db"
        shutil.copyfile(store, naive_copy)
        result = await asyncio.to_thread(
            run_dataintel, ["backup", "backup.db"], fresh_directory, environment
        )
        assert result.returncode == 0, result.stderr
    finally:
        await engine.dispose()
    assert await audit_entries(naive_copy) < ENTRIES
    assert await audit_entries(fresh_directory / "backup.db") == ENTRIES
    backup_url = sqlite_url(fresh_directory / "backup.db")
    verified = await asyncio.to_thread(
        run_dataintel,
        ["audit", "verify"],
        fresh_directory,
        clean_environment(DATAINTEL_DATABASE_URL=backup_url),
    )
    assert verified.stdout.startswith(f"audit log intact: {ENTRIES} entries")


def test_an_existing_destination_is_refused(fresh_directory: Path) -> None:
    (fresh_directory / "taken.db").write_text("")
    result = run_dataintel(["backup", "taken.db"], fresh_directory, clean_environment())
    assert_one_line_error(result, "exists already")


def test_postgresql_is_told_to_use_pg_dump(fresh_directory: Path) -> None:
    environment = clean_environment(DATAINTEL_DATABASE_URL="postgresql://app@127.0.0.1/x")
    result = run_dataintel(["backup", "out.db"], fresh_directory, environment)
    assert_one_line_error(result, "pg_dump")
