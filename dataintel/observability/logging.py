"""Structured logging: JSON lines in production, readable console output on a terminal.

Every line but one goes through the standard library's logging (uvicorn's and the
libraries' lines too), rendered by one ProcessorFormatter. The exception is the access
log, one line per request: the same processors and renderer, then structlog's own
BytesLogger writes it, because the standard library's round trip (a LogRecord, the
formatter's copy of it, the handler) cost more CPU than the rest of a response-cache hit.
The processors are run as structlog's bound logger runs them, without the bound logger's
layers around them (a filtering method, the proxy, the event's assembly).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO, Literal

import orjson
import structlog
from opentelemetry import trace

LogFormat = Literal["auto", "json", "console"]
ACCESS_LOGGER = "dataintel.access"


def _json_renderer(_: Any, __: str, event_dict: structlog.types.EventDict) -> str:
    return orjson.dumps(event_dict, default=str).decode()


def _json_bytes_renderer(_: Any, __: str, event_dict: structlog.types.EventDict) -> bytes:
    return orjson.dumps(event_dict, default=str)


def _add_trace_ids(_: Any, __: str, event_dict: structlog.types.EventDict) -> Any:
    """trace_id and span_id of the current span, on every line logged inside a trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


class _Timestamp:
    """ISO 8601 UTC with microseconds, as structlog's TimeStamper(fmt="iso", utc=True) writes
    it; the date and time of day are formatted once per second, not on every line."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _: Any, __: str, event_dict: structlog.types.EventDict) -> Any:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


def _shared_processors() -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _Timestamp(),
    ]


_JSON_ACCESS_PROCESSORS: list[structlog.types.Processor] = [
    *_shared_processors(),
    _json_bytes_renderer,
]


class AccessLog:
    """Writes the access lines; off until configured, and off above the info level."""

    def __init__(self) -> None:
        self._writer: _LineWriter | None = None
        self._diverted: list[_LineWriter] = []

    def configure(self, processors: Sequence[structlog.types.Processor], level: int) -> None:
        """Renders with ``processors`` (the last one returns bytes) into stderr."""
        self._writer = None
        if level <= logging.INFO:
            self._writer = _LineWriter(sys.stderr.buffer, processors)

    def info(self, event: str, **fields: object) -> None:
        """One access line; nothing when the log level is above info."""
        writer = self._diverted[-1] if self._diverted else self._writer
        if writer is None:
            return
        try:
            writer.write(event, fields)
        except (OSError, ValueError):
            # As the standard library's handlers do: a line that cannot be written (a
            # closed or broken stderr) must not fail the request it describes.
            return

    @contextmanager
    def diverted(self, file: BinaryIO) -> Iterator[None]:
        """JSON lines into ``file`` instead, whatever the level and format: how tests read them."""
        self._diverted.append(_LineWriter(file, _JSON_ACCESS_PROCESSORS))
        try:
            yield
        finally:
            self._diverted.pop()


class _LineWriter:
    """An info line through ``processors`` into ``file``, as a structlog logger made by
    ``wrap_logger(BytesLogger(file), processors)`` writes it: the same event dictionary
    (the fields, then ``event``), the same processors called with the same arguments, a
    dropped event dropped, the bytes written and flushed by the same BytesLogger."""

    def __init__(self, file: BinaryIO, processors: Sequence[structlog.types.Processor]) -> None:
        self._logger = structlog.BytesLogger(file, name=ACCESS_LOGGER)
        self._processors = tuple(processors)

    def write(self, event: str, fields: dict[str, object]) -> None:
        """Renders one line and writes it."""
        logger = self._logger
        event_dict: Any = fields
        event_dict["event"] = event
        try:
            for processor in self._processors:
                event_dict = processor(logger, "info", event_dict)
        except structlog.DropEvent:
            return
        logger.msg(event_dict)


access_log = AccessLog()
"""The process's access log (like the logging configuration, one per process)."""


def configure_logging(log_format: LogFormat = "auto", level: str = "info") -> None:
    """Route structlog and the standard library (uvicorn included) through one renderer."""
    use_console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    shared = _shared_processors()
    console = structlog.dev.ConsoleRenderer()
    renderer: structlog.types.Processor = console if use_console else _json_renderer
    tail: list[structlog.types.Processor] = (
        [] if use_console else [structlog.processors.format_exc_info]
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *tail,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    access_renderer: structlog.types.Processor = (
        _encoded(console) if use_console else _json_bytes_renderer
    )
    access_log.configure([*shared, access_renderer], logging.getLevelName(level.upper()))
    # The gateway writes its own access line with the request id; uvicorn's would double it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def _encoded(renderer: structlog.dev.ConsoleRenderer) -> structlog.types.Processor:
    def render(logger: Any, method: str, event_dict: structlog.types.EventDict) -> bytes:
        return renderer(logger, method, event_dict).encode()

    return render


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger whose lines carry the current request's bound context."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
