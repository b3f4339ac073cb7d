"""The real app over a copy of the seeded store, driven in-process through httpx.

The store is SQLite; a test or module marked ``both_stores`` runs twice, on SQLite and on
PostgreSQL (a copy of the session's seeded database), so the HTTP path is checked on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.settings import Settings

SettingsFactory = Callable[..., Settings]


BOTH_STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Runs the tests marked ``both_stores`` that use the app's store on each dialect."""
    if (
        metafunc.definition.get_closest_marker("both_stores") is not None
        and "app_store_url" in metafunc.fixturenames
    ):
        metafunc.parametrize("app_store_url", BOTH_STORES, indirect=True)


@pytest.fixture
def app_store_url(request: pytest.FixtureRequest) -> str:
    """This test's own copy of the seeded store: SQLite, or the parameter's dialect."""
    dialect = getattr(request, "param", "sqlite")
    # Asked for lazily, so that the SQLite case runs without a PostgreSQL server.
    url: str = request.getfixturevalue(
        "seeded_postgres_url" if dialect == "postgres" else "seeded_sqlite_url"
    )
    return url


@pytest.fixture
def make_settings(app_store_url: str) -> SettingsFactory:
    """Settings on a fresh copy of the seeded store, with any option overridden."""

    def make(**overrides: Any) -> Settings:
        options: dict[str, Any] = {
            "database_url": app_store_url,
            "log_format": "json",
            "auto_migrate": False,
            "auto_seed": False,
            # The tag poller's statements would show up in tests that count statements;
            # tests of the poller turn it on.
            "cache_tag_poll_seconds": 0,
            # Likewise the job maintenance pass; tests of jobs turn it on or call it.
            "jobs_sweep_seconds": 0,
            # Production refuses to start without one; tests of any environment get one.
            "jwt_secret": "test-signing-secret-" + "0" * 32,
        }
        options.update(overrides)
        return Settings(**options)

    return make


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Runs the app's lifespan and yields a client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(make_settings: SettingsFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on its default settings over the seeded store."""
    async with serving(create_app(make_settings())) as http_client:
        yield http_client
