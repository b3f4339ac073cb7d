"""The store behind its breaker: every connection block gets the breaker and a time budget.

A read whose pooled connection turns out dead (the database restarted, failed over, or a
proxy dropped its backends) is run once more on a fresh connection, inside the same guarded
block: the dead connection says nothing of the store's health, so it neither fails the
request nor counts against the breaker. Only a read that fails again, or any other store
failure, counts. Writes are not retried: a write's outcome is unknown when its connection
dies, so the caller decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.observability.logging import get_logger
from dataintel.resilience import Dependency

T = TypeVar("T")
_log = get_logger("dataintel.store")


class StoreEngine(Protocol):
    """What the services use of an engine: connections, transactions and the dialect."""

    @property
    def dialect(self) -> Dialect: ...

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]: ...


def is_store_failure(error: BaseException) -> bool:
    """Whether an error says the store is unusable (rather than that a statement was wrong)."""
    if isinstance(error, sa.exc.IntegrityError | sa.exc.DataError):
        return False
    return isinstance(error, sa.exc.DBAPIError | sa.exc.TimeoutError | OSError | TimeoutError)


def is_dead_connection(error: BaseException) -> bool:
    """Whether SQLAlchemy found the statement's connection dead (and invalidated it)."""
    return isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated


class GuardedEngine:
    """An engine whose connection blocks run behind the store's breaker, within its budget.

    A block is one unit of work (a read is one statement); a block that raises a store
    failure counts against the breaker and reaches the caller as DEPENDENCY_UNAVAILABLE or
    TIMEOUT, so the services need no error handling of their own.
    """

    def __init__(
        self, engine: StoreEngine, dependency: Dependency, batch_timeout_seconds: float
    ) -> None:
        self._engine = engine
        self.dependency = dependency
        self.batch_timeout_seconds = batch_timeout_seconds
        """The budget of bulk work (see ``batch``), instead of the per-call one."""

    @property
    def dialect(self) -> Dialect:
        """The dialect of the engine underneath."""
        return self._engine.dialect

    @property
    def engine(self) -> StoreEngine:
        """The engine underneath (its connections are not guarded)."""
        return self._engine

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Runs a read behind the breaker; once more on a fresh connection if its was dead."""
        async with self.dependency.section():
            return await _read_twice(self._engine, work)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one guarded block."""
        async with self.dependency.section(), self._engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for one guarded block, committed when it ends without error."""
        async with self.dependency.section(), self._engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def begin_batch(self) -> AsyncIterator[AsyncConnection]:
        """A transaction for bulk work, behind the breaker, within the batch budget."""
        async with (
            self.dependency.section(self.batch_timeout_seconds),
            self._engine.begin() as connection,
        ):
            yield connection

    async def read_batch(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """A long read (a whole-table check or comparison) within the batch budget."""
        async with self.dependency.section(self.batch_timeout_seconds):
            return await _read_twice(self._engine, work)


async def read(engine: StoreEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Runs a read on one of the engine's connections, guarded when the engine is."""
    if isinstance(engine, GuardedEngine):
        return await engine.read(work)
    return await _read_twice(engine, work)


def batch(engine: StoreEngine) -> AbstractAsyncContextManager[AsyncConnection]:
    """A transaction for bulk work (materialization, a run's results): guarded engines give
    it the batch budget, since the per-call one is sized for requests."""
    if isinstance(engine, GuardedEngine):
        return engine.begin_batch()
    return engine.begin()


async def read_batch(engine: StoreEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """A long read (a check or a comparison over whole tables), within the batch budget."""
    if isinstance(engine, GuardedEngine):
        return await engine.read_batch(work)
    return await _read_twice(engine, work)


async def _read_twice(engine: StoreEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    try:
        async with engine.connect() as connection:
            return await work(connection)
    except sa.exc.DBAPIError as error:
        if not is_dead_connection(error):
            raise
        _log.info("store connection was dead; reading again on a fresh one")
    async with engine.connect() as connection:
        return await work(connection)


async def fetch_all(
    engine: StoreEngine, statement: sa.Executable, parameters: Mapping[str, Any] | None = None
) -> Sequence[sa.Row[Any]]:
    """Every row of one read statement (retried once on a dead connection).

    ``parameters`` fills the statement's named bind parameters: a statement built once and
    run with new values skips building it and computing its cache key on every read.
    """

    async def rows(connection: AsyncConnection) -> Sequence[sa.Row[Any]]:
        return (await connection.execute(statement, parameters)).all()

    return await read(engine, rows)


async def fetch_scalar(engine: StoreEngine, statement: sa.Executable) -> Any:
    """The one value of a one-row, one-column read statement (e.g. a count)."""

    async def scalar(connection: AsyncConnection) -> Any:
        return (await connection.execute(statement)).scalar_one()

    return await read(engine, scalar)


_SQLITE_STATEMENT_FAILURES = (
    "no such ",
    "syntax error",
    "ambiguous column",
    "misuse of",
    "user-defined function raised exception",
)


def statement_failure(error: sa.exc.DBAPIError) -> str | None:
    """The reason when a statement was wrong (not the store unreachable); None otherwise."""
    if error.connection_invalidated:
        return None
    original = error.orig if error.orig is not None else error
    reason = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if isinstance(error, sa.exc.ProgrammingError | sa.exc.DataError):
        return reason
    if isinstance(error, sa.exc.OperationalError) and reason.startswith(_SQLITE_STATEMENT_FAILURES):
        return reason
    return None
