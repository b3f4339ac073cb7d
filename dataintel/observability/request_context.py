"""Request ids and the access log, as pure ASGI middleware (no per-request thread hops)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from random import getrandbits
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataintel.observability.logging import access_log

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID_NAME = REQUEST_ID_HEADER.encode()
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_from(value: str | None) -> str:
    """The client's request id when it is safe to log and echo, a fresh one otherwise."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    # 128 random bits as 32 hex digits, as uuid4().hex gave, without its os.urandom call:
    # a correlation id need not be unguessable (it is echoed to the client that sent it).
    # The bytes' hex is the same zero-padded lower-case text as format(bits, "032x"), made
    # without the format specification's parsing (about a third fewer instructions).
    return getrandbits(128).to_bytes(16, "big").hex()


Headers = list[tuple[bytes, bytes]]


def incoming_request_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The first X-Request-ID of a request's raw headers, as sent."""
    for name, value in headers:
        if name == REQUEST_ID_NAME:
            return value.decode("latin-1")
    return None


def with_request_id(headers: Iterable[tuple[bytes, bytes]], request_id: bytes) -> Headers:
    """A response's headers echoing the request id (what MutableHeaders' item assignment
    does, in one pass over the headers)."""
    echoed = [h for h in headers if h[0] != REQUEST_ID_NAME]
    echoed.append((REQUEST_ID_NAME, request_id))
    return echoed


def log_access(scope: Scope, state: Mapping[str, Any], status: int, started: float) -> None:
    """The request's access line: what the endpoint noted in the scope's state, the status,
    the duration since ``started`` (``time.perf_counter``)."""
    # access_log.info("request", method=..., ...) without the keyword arguments: the same
    # fields in the same order, then the event.
    access_log.event(
        {
            "method": scope["method"],
            "path": scope["path"],
            "operation": state.get("operation_name"),
            "cost": state.get("operation_cost"),
            "cache": state.get("response_cache"),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "event": "request",
        }
    )


class RequestContextMiddleware:
    """Takes or makes X-Request-ID, binds it to every log line, echoes it, logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(incoming_request_id(scope["headers"]))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()
        echoed = request_id.encode("latin-1")

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = with_request_id(message.get("headers", ()), echoed)
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            finally:
                log_access(scope, state, status, started)
