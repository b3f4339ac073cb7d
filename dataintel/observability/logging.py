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
from contextvars import ContextVar, copy_context
from typing import Any, BinaryIO, Literal

import orjson
import structlog
from opentelemetry import context as otel_context
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
        event_dict["timestamp"] = self.now()
        return event_dict

    def now(self) -> str:
        """The current time as the processor writes it."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        # %-formatting: the same digits as the format specification "06d" of a non-negative
        # int, without parsing the specification on every line.
        return "%s.%06dZ" % (self._prefix, int((now - second) * 1e6))  # noqa: UP031


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
            self._writer = _line_writer(sys.stderr.buffer, processors)

    def info(self, event: str, **fields: object) -> None:
        """One access line; nothing when the log level is above info."""
        fields["event"] = event
        self.event(fields)

    def event(self, event_dict: dict[str, object]) -> None:
        """``info`` with the line's fields and its ``event`` given as one dictionary, in
        the order ``info`` would make it (the fields, then ``event``): no keyword
        arguments to gather on every request."""
        writer = self._diverted[-1] if self._diverted else self._writer
        if writer is None:
            return
        try:
            writer.write_event(event_dict)
        except (OSError, ValueError):
            # As the standard library's handlers do: a line that cannot be written (a
            # closed or broken stderr) must not fail the request it describes.
            return

    @contextmanager
    def diverted(self, file: BinaryIO) -> Iterator[None]:
        """JSON lines into ``file`` instead, whatever the level and format: how tests read them."""
        self._diverted.append(_line_writer(file, _JSON_ACCESS_PROCESSORS))
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
        fields["event"] = event
        self.write_event(fields)

    def write_event(self, fields: dict[str, object]) -> None:
        """Renders one line (its fields, ``event`` the last) and writes it."""
        logger = self._logger
        event_dict: Any = fields
        try:
            for processor in self._processors:
                event_dict = processor(logger, "info", event_dict)
        except structlog.DropEvent:
            return
        logger.msg(event_dict)


def _line_writer(file: BinaryIO, processors: Sequence[structlog.types.Processor]) -> _LineWriter:
    """The writer of these processors: the JSON line's own when they are the JSON format's."""
    if _JsonLineWriter.renders(processors):
        return _JsonLineWriter(file, processors)
    return _LineWriter(file, processors)


_STRUCTLOG_PREFIX = structlog.contextvars.STRUCTLOG_KEY_PREFIX
_STRUCTLOG_PREFIX_LENGTH = len(_STRUCTLOG_PREFIX)


def _otel_context_variable() -> ContextVar[Any] | None:
    """The context variable OpenTelemetry keeps its current context in, when it is the
    default runtime context's; None otherwise (every line then asks for the current span)."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    return variable if isinstance(variable, ContextVar) else None


class _JsonLineWriter(_LineWriter):
    """The JSON format's processors (``_JSON_ACCESS_PROCESSORS``) done in one function: the
    same event dictionary, key by key in the same order, rendered by the same ``orjson``
    call and written by the same BytesLogger, without a call per processor.

    - ``merge_contextvars``: the same loop over the copied context;
    - ``_add_trace_ids``: asked only when OpenTelemetry's context variable is set in that
      context (unset, the current context is the variable's default, an empty one: no span);
    - ``add_log_level`` and ``add_logger_name``: ``info`` and the logger's name (an access
      line has no ``_record``);
    - the timestamp by the same ``_Timestamp``.
    """

    _OTEL = _otel_context_variable()

    def __init__(self, file: BinaryIO, processors: Sequence[structlog.types.Processor]) -> None:
        super().__init__(file, processors)
        timestamp = processors[4]
        assert isinstance(timestamp, _Timestamp)
        self._timestamp = timestamp

    @staticmethod
    def renders(processors: Sequence[structlog.types.Processor]) -> bool:
        """Whether ``processors`` are exactly what this writer does: the shared processors
        (a ``_Timestamp`` of their own) and the JSON renderer."""
        expected = _JSON_ACCESS_PROCESSORS
        return (
            len(processors) == len(expected)
            and isinstance(processors[4], _Timestamp)
            and all(
                given is wanted or index == 4
                for index, (given, wanted) in enumerate(zip(processors, expected, strict=True))
            )
        )

    def write_event(self, fields: dict[str, object]) -> None:
        """Renders one line (its fields, ``event`` the last) and writes it."""
        event_dict = fields
        context = copy_context()
        traced = self._OTEL is None
        otel = self._OTEL
        for variable in context:
            if variable is otel:
                traced = True
            elif variable.name.startswith(_STRUCTLOG_PREFIX) and context[variable] is not Ellipsis:
                event_dict.setdefault(variable.name[_STRUCTLOG_PREFIX_LENGTH:], context[variable])
        if traced:
            _add_trace_ids(None, "info", event_dict)
        event_dict["level"] = "info"
        logger = self._logger
        record: Any = event_dict.get("_record")
        event_dict["logger"] = logger.name if record is None else record.name
        event_dict["timestamp"] = self._timestamp.now()
        logger.msg(orjson.dumps(event_dict, default=str))


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
