"""Settings in groups: variables keep their names, components get groups, errors name variables."""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from click.testing import CliRunner
from pydantic import SecretStr, ValidationError

from dataintel.cache.redis_connection import create_redis
from dataintel.cli import main
from dataintel.context import RequestContext
from dataintel.preflight import describe_validation_error
from dataintel.settings import Option, Settings, SettingsGroup, deprecated_variables
from dataintel.settings.group import PREFIX

PACKAGE = Path(__file__).parents[2] / "dataintel"
RELEASED = Path(__file__).with_name("released_variables.txt")
"""The variables of the last release: each must still set its option (or its successor)."""

# Where the whole settings object may be held: the places that build the process and hand
# each component its group, and the ones that describe or check the whole configuration.
COMPOSITION = {
    "app.py",
    "cli.py",
    "command_runs.py",
    "derived_data_commands.py",
    "document_commands.py",
    "worker.py",
    "preflight.py",
    "check_commands.py",
    "evolution/commands.py",
    "openapi/__init__.py",
    "openapi/document.py",
    "openapi/routes.py",
}

# A value unlike the default for the annotations that need more than a generic rule.
_OTHER: dict[str, tuple[str, object]] = {
    "database_url": ("postgresql://u@db:5432/x", "postgresql+asyncpg://u@db:5432/x"),
    "jwt_algorithms": ('["ES256"]', ["ES256"]),
}


def _group(option: Option) -> type[SettingsGroup]:
    group = Settings.model_fields[option.group].annotation
    assert isinstance(group, type)
    assert issubclass(group, SettingsGroup)
    return group


def _default(option: Option) -> object:
    default = _group(option).model_fields[option.field].get_default(call_default_factory=True)
    return default.get_secret_value() if isinstance(default, SecretStr) else default


def _other_value(option: Option) -> tuple[str, object]:
    """A variable's text unlike the default, and the value the group should read from it."""
    if option.name in _OTHER:
        return _OTHER[option.name]
    field = _group(option).model_fields[option.field]
    default = field.get_default(call_default_factory=True)
    annotation: Any = field.annotation
    if get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if annotation is bool:
        return ("false", False) if default is True else ("true", True)
    if annotation is int:
        return str(default + 1), default + 1
    if annotation is float:
        value = default / 2 if default else 0.5
        return str(value), value
    if annotation is str:
        return f"other-{option.name}", f"other-{option.name}"
    if annotation is Path:
        return f"/srv/{option.name}", Path(f"/srv/{option.name}")
    if annotation is SecretStr:
        return "s" * 48, "s" * 48
    if get_origin(annotation) is Literal:
        choice = next(value for value in get_args(annotation) if value != default)
        return str(choice), choice
    if get_origin(annotation) is list:
        return '["viewer"]', ["viewer"]
    raise AssertionError(f"no other value for {option.name}: {annotation}")


@pytest.mark.parametrize("option", list(Settings.options()), ids=lambda option: option.name)
def test_every_variable_sets_its_field(option: Option, monkeypatch: pytest.MonkeyPatch) -> None:
    text, expected = _other_value(option)
    monkeypatch.setenv(option.variable, text)
    value = getattr(getattr(Settings(), option.group), option.field)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    assert value == expected
    assert expected != _default(option)


def test_every_option_is_set_by_its_name_as_the_variable_would() -> None:
    for option in Settings.options():
        _, expected = _other_value(option)
        value = getattr(getattr(Settings(**{option.name: expected}), option.group), option.field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        assert value == expected, option.name


def test_an_option_given_by_name_wins_over_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAINTEL_CACHE_TTL_SECONDS", "7")
    monkeypatch.setenv("DATAINTEL_REDIS_TIMEOUT_SECONDS", "0.9")
    monkeypatch.setenv("DATAINTEL_MAX_DEPTH", "4")
    settings = Settings(cache_ttl_seconds=5, redis_call_timeout_seconds=0.3, max_depth=3)
    assert (settings.cache.ttl_seconds, settings.limits.max_depth) == (5, 3)
    assert settings.redis.call_timeout_seconds == 0.3


def test_every_released_variable_is_still_read() -> None:
    released = set(RELEASED.read_text().split())
    current = {option.variable for option in Settings.options()}
    deprecated = {
        PREFIX + old.upper() for option in Settings.options() for old in option.deprecated
    }
    assert released <= current | deprecated
    assert deprecated <= released
    assert not any("__" in variable for variable in current)


def test_the_deprecated_redis_timeout_is_read_as_the_call_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATAINTEL_REDIS_TIMEOUT_SECONDS", "0.8")
    redis = Settings().redis
    assert redis.call_timeout_seconds == 0.8
    assert redis.socket_timeout_seconds == 1.6
    assert deprecated_variables({"DATAINTEL_REDIS_TIMEOUT_SECONDS": "0.8"}) == [
        ("DATAINTEL_REDIS_TIMEOUT_SECONDS", "DATAINTEL_REDIS_CALL_TIMEOUT_SECONDS")
    ]
    monkeypatch.setenv("DATAINTEL_REDIS_CALL_TIMEOUT_SECONDS", "0.3")
    assert Settings().redis.call_timeout_seconds == 0.3


def test_the_default_redis_timeouts_are_the_ones_of_before() -> None:
    redis = Settings().redis
    assert (redis.call_timeout_seconds, redis.socket_timeout_seconds) == (0.25, 0.5)
    assert deprecated_variables({"DATAINTEL_REDIS_CALL_TIMEOUT_SECONDS": "1"}) == []


async def test_the_redis_client_times_out_at_twice_the_call_budget() -> None:
    client = create_redis(
        Settings(redis_url="redis://127.0.0.1:1/0", redis_call_timeout_seconds=0.4).redis
    )
    assert client is not None
    try:
        options = client.connection_pool.connection_kwargs
        assert (options["socket_timeout"], options["socket_connect_timeout"]) == (0.8, 0.8)
    finally:
        await client.aclose()


def test_a_worker_warns_of_a_deprecated_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATAINTEL_REDIS_URL", raising=False)
    monkeypatch.setenv("DATAINTEL_REDIS_TIMEOUT_SECONDS", "0.5")
    result = CliRunner().invoke(main, ["worker"])
    assert result.exit_code != 0
    assert (
        "warning: DATAINTEL_REDIS_TIMEOUT_SECONDS is deprecated and read as"
        " DATAINTEL_REDIS_CALL_TIMEOUT_SECONDS" in result.output
    )


def test_errors_of_several_groups_come_together_named_by_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATAINTEL_CACHE_TTL_SECONDS", "soon")
    monkeypatch.setenv("DATAINTEL_MAX_DEPTH", "0")
    monkeypatch.setenv("DATAINTEL_OTEL_TRACES_SAMPLER_ARG", "2")
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert raised.value.title == "Settings"
    assert sorted(str(error["loc"][0]) for error in raised.value.errors()) == [
        "cache_ttl_seconds",
        "max_depth",
        "otel_traces_sampler_arg",
    ]
    line = describe_validation_error(raised.value)
    assert "DATAINTEL_CACHE_TTL_SECONDS: Input should be a valid number" in line
    assert "DATAINTEL_MAX_DEPTH: Input should be greater than or equal to 1 (got '0')" in line
    assert "DATAINTEL_OTEL_TRACES_SAMPLER_ARG:" in line


def test_an_unknown_option_name_is_an_error() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(redis_timeout_seconds=1.0, cache_ttl_seconds=5)
    assert [error["loc"] for error in raised.value.errors()] == [("redis_timeout_seconds",)]


def test_the_cli_names_the_variable_that_does_not_validate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATAINTEL_RATE_LIMIT_WINDOW_SECONDS", "never")
    result = CliRunner().invoke(main, ["schema", "policy"])
    assert result.exit_code == 1
    assert "DATAINTEL_RATE_LIMIT_WINDOW_SECONDS: Input should be a valid integer" in result.output


def test_the_request_context_carries_no_settings() -> None:
    fields = {field.name: field.type for field in dataclasses.fields(RequestContext)}
    assert "settings" not in fields
    assert not any("Settings" in str(kind) for kind in fields.values())
    assert fields["max_page_size"] == "int"


def _takes_whole_settings(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            for argument in arguments:
                if (
                    isinstance(argument.annotation, ast.Name)
                    and argument.annotation.id == "Settings"
                ):
                    found.append(f"{node.name}({argument.arg})")
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.annotation, ast.Name)
            and node.annotation.id == "Settings"
            and isinstance(node.target, ast.Name)
        ):
            found.append(node.target.id)
    return found


def test_components_take_their_group_not_the_whole_settings() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative in COMPOSITION or relative.startswith("settings/"):
            continue
        found = _takes_whole_settings(ast.parse(path.read_text()))
        if found:
            offenders[relative] = found
    assert offenders == {}


def test_the_check_sees_a_component_that_takes_the_whole_settings() -> None:
    tree = ast.parse("def build(settings: Settings) -> None: ...\nclass A:\n    s: Settings\n")
    assert _takes_whole_settings(tree) == ["build(settings)", "s"]
