"""The store's engine: one AsyncEngine for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dataintel.settings import StoreSettings
from dataintel.store.sqlite_driver import INLINE_READS, one_call_aiosqlite

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SUPPORTED_DRIVERS = frozenset(_ASYNC_DRIVERS.values())


def create_engine(settings: StoreSettings) -> AsyncEngine:
    """An engine for ``settings.database_url``, with the pragmas or pool of its dialect."""
    url = store_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    return _postgresql_engine(url, settings)


def store_url(dsn: str) -> URL:
    """The DSN as a URL with the async driver of its dialect; ValueError for any other store."""
    # A DSN without a driver (postgresql://...) gets the async one rather than a blocking one.
    try:
        url = make_url(dsn)
    except sa.exc.ArgumentError:
        raise ValueError(
            f"DATAINTEL_DATABASE_URL {dsn!r} is not a URL such as"
            " sqlite+aiosqlite:///./var/dataintel.db or postgresql://user@host:5432/db"
        ) from None
    backend = url.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"DATAINTEL_DATABASE_URL names an unsupported store {url.drivername!r}:"
            " use sqlite+aiosqlite:///path or postgresql://user@host:5432/db"
        )
    if "+" not in url.drivername:
        url = url.set(drivername=_ASYNC_DRIVERS[backend])
    if url.drivername not in _SUPPORTED_DRIVERS:
        raise ValueError(
            f"DATAINTEL_DATABASE_URL uses the driver {url.drivername!r}; the gateway runs on"
            f" {' or '.join(sorted(_SUPPORTED_DRIVERS))}"
        )
    return url


def _is_sqlite_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"


def _sqlite_engine(url: URL, settings: StoreSettings) -> AsyncEngine:
    options: dict[str, Any] = {
        # One hand-off to the connection's thread per statement (see sqlite_driver.py).
        "module": one_call_aiosqlite(),
        # sqlite3's timeout is the busy timeout: how long a writer waits for the lock.
        "connect_args": {"timeout": settings.database_timeout_seconds},
    }
    if not _is_sqlite_memory(url):
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        options["pool_size"] = settings.database_pool_size
        options["pool_timeout"] = settings.database_timeout_seconds
    engine = create_async_engine(url, **options)
    sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str | None, value: object) -> bool | None:
    """SQLite's ``value REGEXP pattern``: a search anywhere in the value, like PostgreSQL's ~."""
    if pattern is None or value is None:
        return None
    return _pattern(pattern).search(str(value)) is not None


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    # SQLite has no REGEXP of its own; quality's regex checks call this one.
    dbapi_connection.create_function("regexp", 2, _regexp, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        # SQLite leaves foreign keys unchecked unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets readers go on while one writer writes; NORMAL sync is safe with WAL.
        cursor.execute("PRAGMA journal_mode=WAL")
        (journal_mode,) = cursor.fetchone()
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    # A reader waits for no writer's lock in WAL mode (nor in memory, a database of its own):
    # only then may a prepared read run on the event loop's thread (see sqlite_driver.py).
    connection_record.info[INLINE_READS] = str(journal_mode).lower() in ("wal", "memory")


# SQLSTATEs that mean the connection is gone, whatever the driver saw of the socket yet:
# connection exceptions (class 08), and the server shutting down or starting up.
_LOST_CONNECTION_CLASS = "08"
_LOST_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03"})


def _classify_lost_connections(context: ExceptionContext) -> None:
    # asyncpg may report "terminating connection due to administrator command" before it has
    # seen the socket close; SQLAlchemy would then return the dead connection to the pool.
    state = getattr(context.original_exception, "sqlstate", None)
    if isinstance(state, str) and (
        state.startswith(_LOST_CONNECTION_CLASS) or state in _LOST_CONNECTION_STATES
    ):
        context.is_disconnect = True


def _postgresql_engine(url: URL, settings: StoreSettings) -> AsyncEngine:
    timeout = settings.database_timeout_seconds
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        pool_timeout=timeout,
        # A connection broken by a server restart is replaced instead of failing a request.
        pool_pre_ping=True,
        connect_args={
            "timeout": timeout,
            "command_timeout": timeout,
            "server_settings": {"application_name": "dataintel"},
        },
    )
    sa.event.listen(engine.sync_engine, "handle_error", _classify_lost_connections)
    return engine
