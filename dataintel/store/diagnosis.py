"""What went wrong with the store, said in one line with what to do about it."""

from __future__ import annotations

import socket

import sqlalchemy as sa
from sqlalchemy.engine import URL

from dataintel.store.engine import store_url

# SQLSTATEs PostgreSQL answers with when the connection itself is refused.
_MISSING_DATABASE = "3D000"
_AUTHENTICATION = ("28000", "28P01")
_MISSING_TABLE = "42P01"

STORE_FAILURES = (sa.exc.DBAPIError, OSError, TimeoutError)
"""Exceptions ``describe_store_failure`` can explain."""


def describe_store_failure(error: BaseException, dsn: str) -> str:
    """One line for a person: what failed on the store at ``dsn`` and the command that fixes it."""
    url = store_url(dsn)
    where = _display(url)
    original = getattr(error, "orig", None) or error
    state = getattr(original, "sqlstate", None)
    text = " ".join(str(original).split())
    if state == _MISSING_DATABASE:
        return (
            f"database {url.database!r} does not exist on {where}: create it with"
            f" `createdb -h {url.host or 'localhost'} -p {url.port or 5432}"
            f" -U {url.username or 'postgres'} {url.database}`, then run `dataintel db upgrade`"
        )
    if state in _AUTHENTICATION:
        return f"PostgreSQL at {where} refused the connection: {text}"
    if state == _MISSING_TABLE or "no such table" in text:
        return f"the store at {where} has no tables yet ({text}): run `dataintel db upgrade`"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the store's host {url.host!r} ({text}): check the database URL"
    if isinstance(error, OSError | TimeoutError):
        return f"cannot reach the store at {where} ({text or type(error).__name__}): is it running?"
    return f"the store at {where} failed: {text}"


def _display(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database}"
    return f"PostgreSQL {url.host or 'localhost'}:{url.port or 5432}/{url.database}"
