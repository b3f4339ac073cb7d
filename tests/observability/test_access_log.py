"""The access line: written to stderr by structlog's own logger, with every field of a line."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time

import orjson
import pytest
import structlog

from dataintel.observability import logging as logging_module
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


@pytest.mark.parametrize("console", [False, True])
def test_the_line_is_the_one_a_structlog_logger_writes(console: bool) -> None:
    """The access log runs the processors without structlog's bound logger around them:
    the bytes must be those the bound logger would have written."""
    renderer = (
        logging_module._encoded(structlog.dev.ConsoleRenderer(colors=False))
        if console
        else logging_module._json_bytes_renderer
    )
    processors = [
        structlog.contextvars.merge_contextvars,
        logging_module._add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        renderer,
    ]
    by_structlog, by_access_log = io.BytesIO(), io.BytesIO()
    bound = structlog.wrap_logger(
        structlog.BytesLogger(by_structlog, name=logging_module.ACCESS_LOGGER),
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    fields: dict[str, object] = {
        "method": "GET",
        "path": "/graphql",
        "operation": "Orders",
        "cost": 51,
        "cache": "hit",
        "status": 200,
        "duration_ms": 0.12,
    }
    writer = logging_module._LineWriter(by_access_log, processors)
    with structlog.contextvars.bound_contextvars(request_id="line-2", tenant="t"):
        bound.info("request", **fields)
        writer.write("request", dict(fields))
    assert by_access_log.getvalue() == by_structlog.getvalue()
    assert by_access_log.getvalue().count(b"\n") == 1


@pytest.mark.parametrize("traced", [False, True])
def test_the_json_line_is_the_one_its_processors_write(
    traced: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JSON format's processors run as one function (``_JsonLineWriter``): the bytes
    must be those of the same processors run one by one, with and without a current span,
    with several bound variables and a field named as one of them."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    monkeypatch.setattr(time, "time", lambda: 1_764_662_400.012345)
    processors = logging_module._JSON_ACCESS_PROCESSORS
    by_processors, by_access_log = io.BytesIO(), io.BytesIO()
    plain = logging_module._LineWriter(by_processors, processors)
    writer = logging_module._line_writer(by_access_log, processors)
    assert isinstance(writer, logging_module._JsonLineWriter)
    fields: dict[str, object] = {"method": "GET", "status": 200, "tenant": "given"}
    tracer = TracerProvider().get_tracer("test")
    with (
        structlog.contextvars.bound_contextvars(request_id="line-3", tenant="bound", n=1),
        tracer.start_as_current_span("request") if traced else contextlib.nullcontext(),
    ):
        plain.write("request", dict(fields))
        writer.write("request", dict(fields))
    assert by_access_log.getvalue() == by_processors.getvalue()
    written = orjson.loads(by_access_log.getvalue())
    assert written["tenant"] == "given"
    assert ("trace_id" in written) is traced
    assert written["timestamp"] == "2025-12-02T08:00:00.012345Z"
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_only_the_json_format_takes_the_json_writer() -> None:
    console: list[structlog.types.Processor] = [
        *logging_module._shared_processors(),
        structlog.dev.ConsoleRenderer(),
    ]
    assert not isinstance(
        logging_module._line_writer(io.BytesIO(), console), logging_module._JsonLineWriter
    )
    configure_logging("json", "info")
    assert isinstance(access_log._writer, logging_module._JsonLineWriter)


def test_a_fresh_request_id_is_32_hex_digits_as_format_writes_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataintel.observability import request_context

    for bits in (0, 1, 0xABC, 2**128 - 1, 0x0F << 120):
        monkeypatch.setattr(request_context, "getrandbits", lambda _, b=bits: b)
        assert request_context.request_id_from(None) == format(bits, "032x")
    assert request_context.request_id_from("given-1") == "given-1"
    assert re.fullmatch(r"[0-9a-f]{32}", request_context.request_id_from("bad id"))


@pytest.mark.parametrize("diverted", [False, True])
def test_the_request_line_is_the_one_info_writes(
    diverted: bool, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    """log_access gives its fields as one dictionary (``AccessLog.event``): the bytes must be
    those of ``info`` with the same fields as keyword arguments, through either writer."""
    from dataintel.observability.request_context import log_access

    monkeypatch.setattr(time, "time", lambda: 1_764_662_400.5)
    monkeypatch.setattr(time, "perf_counter", lambda: 10.0)
    configure_logging("json", "info")
    scope = {"method": "GET", "path": "/graphql"}
    state = {"operation_name": "Orders", "operation_cost": 51, "response_cache": "hit"}
    lines = []
    for by_info in (True, False):
        out = io.BytesIO()
        with (
            structlog.contextvars.bound_contextvars(request_id="line-4"),
            access_log.diverted(out) if diverted else contextlib.nullcontext(),
        ):
            if by_info:
                access_log.info(
                    "request",
                    method="GET",
                    path="/graphql",
                    operation="Orders",
                    cost=51,
                    cache="hit",
                    status=200,
                    duration_ms=round((10.0 - 9.99988) * 1000, 2),
                )
            else:
                log_access(scope, state, 200, 9.99988)
        lines.append(out.getvalue() if diverted else capfdbinary.readouterr().err)
    assert lines[0] == lines[1]
    assert lines[0].count(b"\n") == 1
    assert orjson.loads(lines[0])["request_id"] == "line-4"
