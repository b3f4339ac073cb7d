"""OpenTelemetry traces: the request, the GraphQL operation, loader batches, store and Redis calls.

Nothing here runs unless an OTLP endpoint is configured: no middleware is added, no hook is
installed and the loaders' span helper is a no-op, so an untraced gateway pays nothing.
Never one span per field (a per-field tracer made a 5,000-object query 7x slower), and never
the query text, variables or statement parameters in a span.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.middleware import Middleware
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from dataintel.settings import ObservabilitySettings

_INSTRUMENTATION = "dataintel"
# Paths the orchestrator and Prometheus poll: a span per probe would drown the traces.
_UNTRACED_PATHS = "/healthz$,/readyz$,/metrics$"
_STATEMENT_MAX_CHARS = 2000

_active_tracer: ContextVar[Tracer | None] = ContextVar("dataintel_tracer", default=None)


def current_tracer() -> Tracer | None:
    """The tracer of the request being served, or None when tracing is off."""
    return _active_tracer.get()


@contextmanager
def operation_span() -> Iterator[Span | None]:
    """The GraphQL operation's span, current inside the block; None when untraced.

    The executor names it and sets its attributes once the operation is known.
    """
    tracer = _active_tracer.get()
    if tracer is None:
        yield None
        return
    with tracer.start_as_current_span("graphql.operation") as span:
        yield span


_NO_SPAN: AbstractContextManager[None] = nullcontext()


def loader_batch_span(loader: str, size: int) -> AbstractContextManager[None]:
    """A span around one loader batch (a child of the operation); nothing when untraced."""
    tracer = _active_tracer.get()
    if tracer is None:
        # A shared no-op: a generator context manager per batch cost more than the batch's
        # own bookkeeping on a warm request.
        return _NO_SPAN
    return _span(tracer, loader, size)


@contextmanager
def _span(tracer: Tracer, loader: str, size: int) -> Iterator[None]:
    with tracer.start_as_current_span(
        f"loader {loader}",
        attributes={"dataintel.loader.name": loader, "dataintel.loader.batch_size": size},
    ):
        yield


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, or None outside a sampled trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@dataclass(slots=True)
class Tracing:
    """The app's tracer provider and exporter, or nothing when no endpoint is configured."""

    provider: TracerProvider | None = None

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded and exported."""
        return self.provider is not None

    @classmethod
    def from_settings(cls, settings: ObservabilitySettings) -> Tracing:
        """A provider exporting by OTLP when an endpoint is set; a disabled one otherwise."""
        endpoint = settings.otel_exporter_otlp_traces_endpoint or (
            settings.otel_exporter_otlp_endpoint
        )
        if settings.otel_sdk_disabled or not endpoint:
            return cls()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from dataintel import __version__

        provider = TracerProvider(
            resource=Resource.create(
                {
                    "service.name": settings.otel_service_name,
                    "service.version": __version__,
                }
            ),
            sampler=_sampler(
                settings.otel_traces_sampler,
                settings.otel_traces_sampler_arg,
            ),
        )
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings, endpoint)))
        return cls(provider)

    def tracer(self) -> Tracer | None:
        """The gateway's tracer, None when tracing is off."""
        if self.provider is None:
            return None
        return self.provider.get_tracer(_INSTRUMENTATION)

    def middleware(self) -> list[Middleware]:
        """The HTTP server span (without receive/send spans), then the trace context."""
        tracer = self.tracer()
        if tracer is None:
            return []
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from starlette.middleware import Middleware

        return [
            Middleware(
                OpenTelemetryMiddleware,
                excluded_urls=_UNTRACED_PATHS,
                tracer_provider=self.provider,
                exclude_spans=["receive", "send"],
            ),
            Middleware(TraceContextMiddleware, tracer=tracer),
        ]

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A client span per store statement: its SQL with placeholders, never parameters."""
        tracer = self.tracer()
        if tracer is None:
            return
        from sqlalchemy import event

        hooks = _StatementSpans(tracer, engine.dialect.name)
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", hooks.before)
        event.listen(sync_engine, "after_cursor_execute", hooks.after)
        event.listen(sync_engine, "handle_error", hooks.failed)

    def instrument_redis(self, client: Redis | None) -> None:
        """A client span per Redis command or pipeline; arguments are replaced by '?'."""
        if self.provider is None or client is None:
            return
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Exports what is buffered and stops the exporter."""
        if self.provider is not None:
            self.provider.shutdown()


def _sampler(name: str, argument: float) -> Any:
    from opentelemetry.sdk.trace import sampling

    samplers: dict[str, Any] = {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(argument),
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(sampling.TraceIdRatioBased(argument)),
    }
    return samplers[name]


def _exporter(settings: ObservabilitySettings, endpoint: str) -> Any:
    # The exporter reads its other standard variables itself (OTEL_EXPORTER_OTLP_HEADERS,
    # _TIMEOUT, _COMPRESSION, _CERTIFICATE): they only tune how it talks to the collector.
    if settings.otel_exporter_otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[import-not-found]
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if settings.otel_exporter_otlp_traces_endpoint is None:
        # The general endpoint is a base URL; the signal's path is added, as the spec says.
        endpoint = endpoint.rstrip("/") + "/v1/traces"
    return OTLPSpanExporter(endpoint=endpoint)


class TraceContextMiddleware:
    """Inside the server span: the tracer for loaders, and the traceresponse header."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = trace.get_current_span().get_span_context()
        token = _active_tracer.set(self.tracer)

        async def send_with_trace(message: Message) -> None:
            if message["type"] == "http.response.start" and context.is_valid:
                # W3C Trace Context level 2: which trace the server put this request in.
                value = (
                    f"00-{context.trace_id:032x}-{context.span_id:016x}-"
                    f"{int(context.trace_flags):02x}"
                )
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"traceresponse", value.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_trace)
        finally:
            _active_tracer.reset(token)


class _StatementSpans:
    """SQLAlchemy cursor events turned into one span per statement."""

    def __init__(self, tracer: Tracer, dialect: str) -> None:
        self.tracer = tracer
        self.system = "postgresql" if dialect == "postgresql" else dialect

    def before(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if not trace.get_current_span().get_span_context().is_valid:
            # Migrations, seeding and background polls outside a request are not traced.
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        span = self.tracer.start_span(
            f"{operation} {self.system}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": self.system,
                "db.operation": operation,
                "db.statement": statement[:_STATEMENT_MAX_CHARS],
            },
        )
        if context is not None:
            context._dataintel_span = span
            context._dataintel_started = time.perf_counter()

    def after(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        span = getattr(context, "_dataintel_span", None)
        if span is not None:
            span.end()
            context._dataintel_span = None

    def failed(self, exception_context: Any) -> None:
        context = exception_context.execution_context
        span = getattr(context, "_dataintel_span", None)
        if span is not None:
            span.set_status(
                Status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
            )
            span.end()
            context._dataintel_span = None
