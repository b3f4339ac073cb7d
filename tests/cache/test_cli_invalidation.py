"""The command line invalidates the shared cache: after a materialization, and on demand."""

from __future__ import annotations

import pytest
import redis
from click.testing import CliRunner

from dataintel.cli import main

pytestmark = pytest.mark.redis


def tag_version(url: str, tag: str) -> str | None:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        value = client.get(f"dataintel:tag:{tag}")
        return None if value is None else str(value)
    finally:
        client.close()


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, seeded_sqlite_url: str, redis_url: str) -> str:
    monkeypatch.setenv("DATAINTEL_DATABASE_URL", seeded_sqlite_url)
    monkeypatch.setenv("DATAINTEL_REDIS_URL", redis_url)
    return redis_url


def test_materialize_invalidates_the_feature_values(environment: str) -> None:
    before = tag_version(environment, "features:customer")
    result = CliRunner().invoke(main, ["features", "materialize"])
    assert result.exit_code == 0, result.output
    after = tag_version(environment, "features:customer")
    assert after is not None
    assert after != before
    assert tag_version(environment, "features:product") is not None


def test_cache_invalidate(environment: str) -> None:
    result = CliRunner().invoke(main, ["cache", "invalidate", "customer:42", "dataset:orders"])
    assert result.exit_code == 0, result.output
    assert tag_version(environment, "customer:42") is not None
    first = tag_version(environment, "all")
    assert CliRunner().invoke(main, ["cache", "invalidate", "--all"]).exit_code == 0
    assert tag_version(environment, "all") not in (None, first)
    assert CliRunner().invoke(main, ["cache", "invalidate"]).exit_code == 2
