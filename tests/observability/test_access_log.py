"""The access line: written to stderr by structlog's own logger, with every field of a line."""

from __future__ import annotations

import re

import orjson
import pytest
import structlog

from dataintel.observability.logging import access_log, configure_logging


def write_one() -> None:
    with structlog.contextvars.bound_contextvars(request_id="line-1"):
        access_log.info("request", method="GET", path="/graphql", status=200, duration_ms=0.5)


def test_a_json_line_on_stderr_with_the_bound_request_id(
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", "info")
    write_one()
    [line] = capfd.readouterr().err.splitlines()
    written = orjson.loads(line)
    assert written["event"] == "request"
    assert written["request_id"] == "line-1"
    assert (written["method"], written["path"], written["status"]) == ("GET", "/graphql", 200)
    assert written["level"] == "info"
    assert written["logger"] == "dataintel.access"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", written["timestamp"])


def test_console_format_writes_a_readable_line(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("console", "info")
    write_one()
    [line] = capfd.readouterr().err.splitlines()
    assert "request" in line
    assert "request_id" in line
    assert "line-1" in line


def test_no_access_line_above_the_info_level(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "warning")
    write_one()
    assert capfd.readouterr().err == ""
