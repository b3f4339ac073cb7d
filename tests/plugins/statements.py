"""Counts the SQL statements an engine actually executes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


class StatementLog:
    """The statements executed while it listened."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __len__(self) -> int:
        return len(self.statements)


@contextmanager
def counting_statements(engine: AsyncEngine) -> Iterator[StatementLog]:
    """Records every statement the engine sends to the database inside the block."""
    log = StatementLog()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        log.statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)
