"""Every setting is documented in docs/configuration.md, so the page cannot fall behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataintel.settings import Settings

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def test_every_setting_has_a_row_in_its_group() -> None:
    page = DOCS.read_text()
    missing = []
    for option in Settings.options():
        section = page.split(f"\n## {option.group}\n", 1)[-1].split("\n## ", 1)[0]
        if f"| `{option.variable}` | `{option.path}` |" not in section:
            missing.append(option.variable)
    assert missing == []


def test_every_deprecated_variable_has_a_row() -> None:
    page = DOCS.read_text()
    deprecated = page.split("\n## Deprecated variables\n", 1)[1].split("\n## ", 1)[0]
    for option in Settings.options():
        for old in option.deprecated:
            assert f"| `DATAINTEL_{old.upper()}` | `{option.variable}` |" in deprecated


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAINTEL_PORT", "9123")
    monkeypatch.setenv("DATAINTEL_REDIS_URL", "redis://127.0.0.1:1/0")
    settings = Settings()
    assert settings.server.port == 9123
    assert settings.redis.url == "redis://127.0.0.1:1/0"
    assert settings.graphiql_enabled is True
    assert Settings(environment="production").graphiql_enabled is False
