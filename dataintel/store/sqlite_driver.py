"""aiosqlite under SQLAlchemy with one thread hop per statement, and none for an idle rollback.

aiosqlite runs every call on the connection's own thread, and SQLAlchemy's adapter makes one
call per DBAPI step: make a cursor, execute, fetch the rows, close the cursor, and roll back
when the connection goes back to the pool. Each call is a hand-off to that thread and back
to the event loop (a queue put, a thread wake-up, a self-pipe write, a loop iteration, the
GIL changing hands twice), and five of them cost more CPU than SQLite's read of a 50-row
page; under load each is also a chance to lose the core. Here a statement is one call on
that thread (cursor, execute, every row fetched, cursor closed), and commit or rollback is
not sent when SQLite has no transaction open (a read outside ``begin()`` never opens one),
where sqlite3's own commit and rollback would do nothing.

Server-side cursors (``stream()``) keep SQLAlchemy's adapter: they fetch in chunks. The
engine gets this driver through ``create_async_engine(module=...)``, SQLAlchemy's way of
handing a dialect its DBAPI module, so the dialect, compiler, pool and types are unchanged.

A prepared read (``read_rows``, used by dataintel/store/prepared.py) makes no hand-off at
all while SQLite's share of it is small: it runs on the event loop's thread, within a budget
of SQLite virtual-machine steps, and is handed to the connection's thread only past it.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Awaitable, Iterator, Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_only

# What the statement's one call on the connection's thread hands back.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run(connection: aiosqlite.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    # Runs on the connection's thread: every step of the statement in one hand-off.
    cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description is not None else []
        # Read after the fetch: a DML statement with RETURNING counts its rows as they come.
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


# SQLite virtual-machine steps a read may take on the event loop's thread before it is
# handed to the connection's thread instead: a 51-row page or 48 rows by key take about a
# thousand, a few hundred microseconds with their rows made; a scan of a large table
# takes millions.
INLINE_STEPS = 20_000

INLINE_READS = "dataintel.inline_reads"
"""The key, in a pooled connection's ``info``, of whether its reads may run inline: only in
WAL mode (or in memory), where a reader never waits for a writer's lock."""


# How often SQLite asks a read on the event loop's thread whether it is past its budget.
# SQLite counts a statement's steps over all its runs (sqlite3 keeps its statements prepared,
# and resetting one keeps its count), and calls the handler each time that count reaches a
# multiple of the interval: a budget of one interval would stop every twentieth run of a
# thousand-step read, re-run on the connection's thread. The budget is counted in calls
# instead, per read, so a read stops between INLINE_STEPS and one interval more.
_STEPS_PER_CHECK = 1_000


def _read_inline(connection: sqlite3.Connection, operation: str, parameters: Any) -> list[Any]:
    interval = min(_STEPS_PER_CHECK, INLINE_STEPS)
    checks_left = INLINE_STEPS // interval

    def over_budget() -> int:
        nonlocal checks_left
        checks_left -= 1
        return checks_left < 0

    connection.set_progress_handler(over_budget, interval)
    try:
        cursor = connection.execute(operation, parameters)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()
    finally:
        connection.set_progress_handler(None, 0)


def _read_on_thread(connection: aiosqlite.Connection, operation: str, parameters: Any) -> list[Any]:
    return _run(connection, operation, parameters, False)[1]


async def read_rows(
    adapted: OneCallConnection, operation: str, parameters: Sequence[Any], inline: bool
) -> list[Any]:
    """The rows of one read statement: on the event loop's thread while SQLite's part stays
    within ``INLINE_STEPS`` (and ``inline``, and no transaction is open), else on the
    connection's thread. The caller holds the connection (checked out of the pool)."""
    driver = cast(aiosqlite.Connection, adapted._connection)
    if inline and not adapted._in_transaction():
        try:
            return _read_inline(driver._conn, operation, parameters)
        except sqlite3.OperationalError as error:
            # Interrupted by the budget (nothing was written: a read, outside a transaction);
            # any other failure is the statement's own.
            if error.sqlite_errorcode != sqlite3.SQLITE_INTERRUPT:
                raise
    call: Awaitable[list[Any]] = driver._execute(  # type: ignore[no-untyped-call]
        _read_on_thread, driver, operation, parameters
    )
    return await call


class OneCallCursor:
    """A DBAPI cursor whose statement is one call on the connection's thread, rows buffered.

    The rows are fetched with the statement, as SQLAlchemy's adapter does for a client-side
    cursor; fetching them from here is plain Python.
    """

    server_side = False
    __slots__ = ("_adapted", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, adapted: OneCallConnection) -> None:
        self._adapted = adapted
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def _call(self, operation: str, parameters: Any, many: bool) -> None:
        driver = cast(aiosqlite.Connection, self._adapted._connection)
        try:
            # aiosqlite's way of running a function on its thread (what its own methods use).
            call: Awaitable[_Outcome] = driver._execute(  # type: ignore[no-untyped-call]
                _run, driver, operation, parameters, many
            )
            outcome = await_only(call)
        except Exception as error:
            self._adapted._handle_exception(error)
        self.description, rows, self.rowcount, self.lastrowid = outcome
        self._rows = deque(rows)

    def execute(self, operation: str, parameters: Any = None) -> None:
        """Runs one statement and buffers its rows: one hand-off to the connection's thread."""
        self._call(operation, parameters, False)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        """Runs one statement per parameter set, all in one hand-off."""
        self._call(operation, seq_of_parameters, True)

    async def _async_soft_close(self) -> None:
        # SQLAlchemy's asyncio layer closes the driver's cursor here; this one is closed.
        return None

    def close(self) -> None:
        """Drops the rows not fetched; the driver's cursor was closed with the statement."""
        self._rows.clear()

    def fetchone(self) -> Any:
        """The next row, or None."""
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` (default ``arraysize``) next rows."""
        rows = self._rows
        count = min(self.arraysize if size is None else size, len(rows))
        return [rows.popleft() for _ in range(count)]

    def fetchall(self) -> list[Any]:
        """Every row not fetched yet."""
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()

    def setinputsizes(self, *sizes: Any) -> None:
        """sqlite3 ignores input sizes."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """sqlite3 ignores output sizes."""


class OneCallConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection with one-call cursors and no idle commit or rollback."""

    __slots__ = ()

    def cursor(self, server_side: bool = False) -> Any:
        """A one-call cursor; a server-side one (``stream()``) is SQLAlchemy's, which pages."""
        if server_side:
            return super().cursor(server_side=True)
        return OneCallCursor(self)

    def _in_transaction(self) -> bool:
        # sqlite3 reads SQLite's autocommit flag without a thread check; no call of this
        # connection runs meanwhile (SQLAlchemy hands a connection to one task at a time).
        connection: sqlite3.Connection | None = self._connection._connection
        return connection is not None and connection.in_transaction

    def rollback(self) -> None:
        """Rolls back on the connection's thread, only when a transaction is open."""
        if self._in_transaction():
            super().rollback()

    def commit(self) -> None:
        """Commits on the connection's thread, only when a transaction is open."""
        if self._in_transaction():
            super().commit()


class OneCallAiosqlite(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given: its connections are
    ``OneCallConnection``s."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        """A connection as SQLAlchemy's module makes it, with one-call cursors."""
        # Prepared reads run on the event loop's thread (read_rows); SQLAlchemy hands a
        # connection to one task at a time, so no two threads use it at once.
        kw["check_same_thread"] = False
        adapted = super().connect(*arg, **kw)
        return OneCallConnection(self, adapted._connection)


def one_call_aiosqlite() -> OneCallAiosqlite:
    """The module to pass as ``create_async_engine(..., module=...)`` for SQLite."""
    return OneCallAiosqlite(aiosqlite, sqlite3)
