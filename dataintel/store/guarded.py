"""The store behind its breaker: every connection block gets the breaker and a time budget."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.resilience import Dependency


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


class GuardedEngine:
    """An engine whose connection blocks run behind the store's breaker, within its budget.

    A block is one unit of work (a read is one statement); a block that raises a store
    failure counts against the breaker and reaches the caller as DEPENDENCY_UNAVAILABLE or
    TIMEOUT, so the services need no error handling of their own.
    """

    def __init__(self, engine: StoreEngine, dependency: Dependency) -> None:
        self._engine = engine
        self.dependency = dependency

    @property
    def dialect(self) -> Dialect:
        """The dialect of the engine underneath."""
        return self._engine.dialect

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
