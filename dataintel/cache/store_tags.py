"""Tag versions kept in the store: how writes from the CLI reach servers that run without Redis.

A bump gives each tag a serial above every earlier one. A server polls for serials above the
last it saw and drops its in-process entries of those tags; one indexed query per poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.store import tables
from dataintel.store.types import UTCDateTime

_versions = tables.cache_tag_versions

# One statement per tag: the serial is computed under the write lock the insert takes, so
# concurrent bumps on SQLite never hand out the same serial.
_BUMP = sa.text(
    "INSERT INTO cache_tag_versions (tag, serial, bumped_at)"
    " SELECT :tag, COALESCE(MAX(serial), 0) + 1, :bumped_at FROM cache_tag_versions WHERE true"
    " ON CONFLICT (tag) DO UPDATE SET serial = excluded.serial, bumped_at = excluded.bumped_at"
).bindparams(sa.bindparam("bumped_at", type_=UTCDateTime))


async def bump_tags(engine: AsyncEngine, tags: Sequence[str]) -> None:
    """Gives every tag a new serial, in one transaction."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Read committed would let two bumps read the same MAX(serial); a poller that
            # saw the first commit would then skip the second. Bumps take turns instead.
            await connection.execute(
                sa.text("LOCK TABLE cache_tag_versions IN SHARE ROW EXCLUSIVE MODE")
            )
        now = datetime.now(UTC)
        for tag in dict.fromkeys(tags):
            await connection.execute(_BUMP, {"tag": tag, "bumped_at": now})


async def latest_serial(engine: AsyncEngine) -> int:
    """The highest serial handed out so far (0 when none)."""
    async with engine.connect() as connection:
        found = await connection.scalar(sa.select(sa.func.max(_versions.c.serial)))
    return int(found or 0)


async def bumped_since(engine: AsyncEngine, serial: int) -> tuple[int, list[str]]:
    """Tags bumped after ``serial``, and the highest serial among them (``serial`` if none)."""
    statement = sa.select(_versions.c.tag, _versions.c.serial).where(_versions.c.serial > serial)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    highest = max((int(row.serial) for row in rows), default=serial)
    return highest, [str(row.tag) for row in rows]
