"""GET and POST /graphql in one ASGI layer: the middleware stack's work for them, without
the stack.

A persisted query over GET answered from the response cache is the gateway's cheapest and
most frequent request, and a dashboard's POST the next; most of their cost was around the
pipeline: four middleware layers each wrapping ``send``, Starlette's router, ``Request`` and
``Headers`` objects. This layer answers every GET and POST to the GraphQL path itself, doing
what each layer of the stack does for it, in the same order and with the same functions:

- ``Connection: close`` while draining (http/drain.py);
- the HTTP metrics and the current request's metrics (observability/metrics.py);
- the request id, bound to every log line and echoed, and the access line
  (observability/request_context.py);
- the per-client request limit, counted once, with its headers or its 429
  (http/rate_limit.py);
- then the endpoint's own handling, ``GraphQLEndpoint.handle_get`` (GraphiQL, media types,
  the query string, CSRF, the pipeline, the response's headers) or ``handle_post`` (media
  types, content type, the body within its size limit, JSON, batches, CSRF, the pipeline,
  the response's headers), which the stack's route calls too.

A plain response (one whose ASGI call is ``Response.__call__``, without a background task)
is sent as its two messages from here, with the headers each layer of the stack would have
added, in the same order; any other goes through ``send`` wrappers doing the same.

Anything else (other paths and methods, HEAD among them, a mounted app's ``root_path``,
websockets) goes to the stack unchanged. An exception (a client gone while its body is
read) leaves this layer as it left the stack, after the same access line and metrics. The
app installs this layer only when tracing is off: the tracing middleware's server span
would be missing here.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from operator import itemgetter
from typing import Any

import structlog
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataintel.http.drain import DRAIN_STATE_KEY, closing, is_draining
from dataintel.http.graphql_endpoint import GraphQLEndpoint
from dataintel.http.rate_limit import RAW_RATE_LIMIT_HEADER_NAMES, ClientRequestLimit, Headers
from dataintel.observability.metrics import GatewayMetrics, activate_metrics, reset_metrics
from dataintel.observability.request_context import (
    REQUEST_ID_HEADER,
    REQUEST_ID_NAME,
    log_access,
    request_id_from,
    with_request_id,
)

_PLAIN = Response.__call__
_SET_ON_ADMITTED = RAW_RATE_LIMIT_HEADER_NAMES | {REQUEST_ID_NAME}
_NAME = itemgetter(0)


def _request_id_variable() -> ContextVar[Any]:
    """The context variable ``bind_contextvars(request_id=...)`` sets, by its public API."""
    tokens = structlog.contextvars.bind_contextvars(request_id=None)
    structlog.contextvars.reset_contextvars(**tokens)
    return tokens["request_id"].var


_REQUEST_ID_VAR = _request_id_variable()


_HEADER_NAMES: dict[bytes, str] = {}
"""Raw header names decoded, as the requests sent them (bounded: ``_KEPT_HEADER_NAMES``)."""
_KEPT_HEADER_NAMES = 256


def _header_name(raw: bytes) -> str:
    """The name decoded (latin-1, as Starlette's Headers), kept while there is room."""
    name = raw.decode("latin-1")
    if len(_HEADER_NAMES) < _KEPT_HEADER_NAMES:
        _HEADER_NAMES[raw] = name
    return name


def _headers(raw_headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request's headers by decoded name (latin-1), the first of repeated ones, as
    Starlette's Headers.get reads them; the names a client sends on every request decoded
    once (``_header_name``). A loop: C passes (zip, map, dict) counted more."""
    names = _HEADER_NAMES
    headers = {}
    for raw_name, raw_value in reversed(raw_headers):
        name = names.get(raw_name)
        if name is None:
            name = _header_name(raw_name)
        headers[name] = raw_value.decode("latin-1")
    return headers


def _sent_headers(
    headers: Headers | tuple[()], added: Headers | None, echoed: bytes, drain: object
) -> Headers:
    """What the rate limit's, the request id's and the draining layer's send wrappers do to
    a response's headers, in the stack's order: each drops the headers it sets and appends
    its own; an allowed request's limit headers (no request id among them) are dropped and
    appended in the same pass."""
    if added is not None:
        # Most responses name none of them: copied by C passes, not filtered in a loop.
        if _SET_ON_ADMITTED.isdisjoint(map(_NAME, headers)):
            sent = list(headers)
        else:
            sent = [h for h in headers if h[0] not in _SET_ON_ADMITTED]
        sent += added
        sent.append((REQUEST_ID_NAME, echoed))
    else:
        sent = with_request_id(headers, echoed)
    if is_draining(drain):
        sent = closing(sent)
    return sent


class GraphQLPath:
    """Answers GET and POST requests to the GraphQL path; passes every other to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        graphql_path: str,
        endpoint: GraphQLEndpoint,
        limit: ClientRequestLimit,
        metrics: GatewayMetrics | None,
    ) -> None:
        self.app = app
        self._path = graphql_path
        self._endpoint = endpoint
        self._limit = limit if limit.applies(graphql_path) else None
        self._metrics = metrics
        self.answered = 0
        """Requests answered here (the tests see the path taken)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self._path or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        # The method as a constant, not the scope's string: the metrics' label lookups then
        # find their key by identity.
        if scope["method"] == "GET":
            method = "GET"
        elif scope["method"] == "POST":
            method = "POST"
        else:
            await self.app(scope, receive, send)
            return
        self.answered += 1
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        started = time.perf_counter()
        metrics = self._metrics
        token = activate_metrics(metrics) if metrics is not None else None
        headers = _headers(raw_headers)
        # incoming_request_id's answer: the first X-Request-ID, decoded as latin-1.
        request_id = request_id_from(headers.get(REQUEST_ID_HEADER))
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        echoed = request_id.encode("latin-1")
        drain = state.get(DRAIN_STATE_KEY)
        status = 500
        added: Headers | None = None

        async def send_out(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                message["headers"] = _sent_headers(headers, added, echoed, drain)
            await send(message)

        # Bound for every log line of the request, as bind_contextvars does (the same
        # variable), without its keyword arguments and key formatting on each request.
        bound = _REQUEST_ID_VAR.set(request_id)
        try:
            try:
                if self._limit is not None:
                    decided = self._limit.admit_now(scope)
                    if type(decided) is list:
                        added = decided
                    else:
                        assert not isinstance(decided, list)
                        added = await self._limit.admit(scope, send_out, decided, asked=True)
                        if added is None:
                            return
                if method == "GET":
                    response = await self._endpoint.handle_get(scope, headers)
                else:
                    response = await self._endpoint.handle_post(scope, receive, headers)
                if type(response).__call__ is not _PLAIN or response.background is not None:
                    await response(scope, receive, send_out)
                    return
                status = response.status_code
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": _sent_headers(response.raw_headers, added, echoed, drain),
                    }
                )
                await send({"type": "http.response.body", "body": response.body})
            finally:
                log_access(scope, state, status, started)
                _REQUEST_ID_VAR.reset(bound)
        finally:
            if metrics is not None:
                assert token is not None
                reset_metrics(token)
                metrics.record_http(scope["path"], method, status, started)
