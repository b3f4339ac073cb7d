"""The settings are checked as a whole before the store is touched."""

from __future__ import annotations

from typing import Any

import pytest

from dataintel.preflight import ConfigurationError, check_settings
from dataintel.settings import Settings

SECRET = "a-production-signing-secret-of-48-characters-xyz"


def test_auto_seed_follows_the_environment() -> None:
    assert Settings().seeds_demo_data is True
    assert Settings(environment="production").seeds_demo_data is False
    assert Settings(environment="production", auto_seed=True).seeds_demo_data is True
    assert Settings(auto_seed=False).seeds_demo_data is False


def test_safe_production_settings_pass() -> None:
    check_settings(Settings(environment="production", jwt_secret=SECRET))


def test_every_problem_is_named_in_one_line() -> None:
    settings = Settings(
        environment="production",
        jwt_secret="short",
        anonymous_roles=["viewer", "analyst"],
        graphiql=True,
        auto_seed=True,
    )
    with pytest.raises(ConfigurationError) as raised:
        check_settings(settings)
    message = str(raised.value)
    assert "\n" not in message
    for fragment in ("32 bytes", "viewer,analyst", "GraphiQL", "auto-seed"):
        assert fragment in message


def test_the_override_accepts_unsafe_production_settings_but_not_a_missing_secret() -> None:
    unsafe: dict[str, Any] = {"environment": "production", "graphiql": True, "auto_seed": True}
    check_settings(Settings(**unsafe, jwt_secret=SECRET, allow_unsafe_production=True))
    with pytest.raises(ConfigurationError, match="DATAINTEL_JWT_SECRET is required"):
        check_settings(Settings(**unsafe, allow_unsafe_production=True))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://app@db:5432/dataintel", "postgresql+asyncpg://app@db:5432/dataintel"),
        ("postgresql://app@db/dataintel", "postgresql+asyncpg://app@db/dataintel"),
        ("postgresql+asyncpg://app@db/dataintel", "postgresql+asyncpg://app@db/dataintel"),
        ("sqlite:////srv/dataintel.db", "sqlite+aiosqlite:////srv/dataintel.db"),
    ],
)
def test_plain_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    assert Settings(database_url=given).store.database_url == expected


def test_an_unsupported_store_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unsupported store 'mysql'"):
        check_settings(Settings(database_url="mysql://app@db/dataintel"))
