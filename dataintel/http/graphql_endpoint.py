"""/graphql: GraphQL over HTTP (GET and POST), and GraphiQL for browsers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from graphql import OperationType
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from dataintel.context import Viewer
from dataintel.errors import BadUserInputError, GatewayError
from dataintel.gateway.batching import Batch, read_batch
from dataintel.gateway.error_format import format_error
from dataintel.gateway.persisted_queries import PERSISTED_GET_VARY
from dataintel.gateway.pipeline import (
    ANY_OPERATION,
    QUERIES_ONLY,
    PipelineInput,
    PipelineOutcome,
    RequestPipeline,
)
from dataintel.gateway.request import DocumentRejected, GraphQLRequest, RequestRejected
from dataintel.http.csrf import CsrfPrevention
from dataintel.http.media_types import (
    JSON,
    SUPPORTED_RESPONSE_TYPES,
    accepts_html,
    content_type_is_json,
    negotiate_response_type,
)
from dataintel.http.query_strings import QueryStringRequests, checked_request
from dataintel.services.schema_usage import client_name
from dataintel.settings import HttpSettings

OPERATION_TYPE_HEADER = "X-GraphQL-Operation-Type"
"""Marks a POST as a query, which a load balancer may retry (deploy/nginx)."""
_OPERATION_TYPE_NAME = OPERATION_TYPE_HEADER.lower()


_KEPT_ACCEPTS = 256
"""Distinct Accept headers whose reading a GET keeps (as negotiate_response_type's cache)."""
_LONGEST_KEPT_ACCEPT = 512


class GraphQLEndpoint:
    """HTTP framing around the request pipeline: reading, CSRF, media types, status, headers.

    Its own stages come before the pipeline's: ``read`` (the query string or the JSON body;
    an array is a batch) and ``csrf``. Then each request, or each item of a batch, runs
    through ``RequestPipeline.run``; the outcome becomes the status and headers here.
    """

    def __init__(
        self,
        pipeline: RequestPipeline,
        http: HttpSettings,
        graphiql: Callable[[], Response] | None,
    ) -> None:
        self._pipeline = pipeline
        self._http = http
        self._graphiql = graphiql
        self._csrf = CsrfPrevention.from_settings(http)
        self._query_strings = QueryStringRequests()
        self._accepts: dict[str | None, tuple[bool, str | None]] = {}
        """A GET's Accept header read (both functions are pure), by the header's text."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as an ASGI app: Starlette's function-endpoint wrapper (a second layer
        of exception handlers per request) has nothing to catch here, ``handle`` returns
        every answer as a response."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answers one request to the GraphQL path."""
        if request.method == "GET":
            return await self.handle_get(request.scope, request.headers)
        return await self.handle_post(request.scope, request.receive, request.headers)

    async def handle_post(
        self, scope: Scope, receive: Receive, headers: Mapping[str, str]
    ) -> Response:
        """Answers one request with a body (a POST) to the GraphQL path, from its ASGI scope,
        its ``receive`` and its headers (a mapping by lower-case name, the first of repeated
        ones): the middleware stack's route and the GraphQL path (http/graphql_path.py) both
        come here."""
        method: str = scope["method"]
        media_type = negotiate_response_type(headers.get("accept"))
        exchange = _Exchange.of(scope, headers)
        if media_type is None:
            return _not_acceptable(exchange.request_id)
        try:
            graphql_request, allowed, raw = await self._read(receive, headers)
            self._csrf.check(method, headers)
        except RequestRejected as rejected:
            return self._refused(exchange, rejected, media_type)
        if isinstance(graphql_request, Batch):
            return await self._batch(exchange, graphql_request, media_type)
        exchange.state["operation_name"] = graphql_request.operation_name
        outcome = await self._pipeline.run(
            self._input(exchange, graphql_request, media_type, allowed=allowed), raw
        )
        if outcome.rejection is not None:
            marked = _marked_as_query(outcome.rejection, method)
            if marked is not outcome.rejection:
                entries = [format_error(e, exchange.request_id) for e in marked.errors]
                outcome = replace(outcome, rejection=marked, errors=entries)
        return self._answer(exchange, outcome, media_type)

    async def handle_get(self, scope: Scope, headers: Mapping[str, str]) -> Response:
        """Answers one GET to the GraphQL path, from its ASGI scope and its headers (a
        mapping by lower-case name, the first of repeated ones): the middleware stack's
        route and the GraphQL path (http/graphql_path.py) both come here."""
        accept = headers.get("accept")
        read = self._accepts.get(accept)
        if read is None:
            read = self._accepts_now(accept)
        html, media_type = read
        if self._graphiql is not None and html:
            params = QueryParams(scope["query_string"])
            if "query" not in params and "extensions" not in params and "documentId" not in params:
                return self._graphiql()
        exchange = _Exchange.of(scope, headers)
        if media_type is None:
            return _not_acceptable(exchange.request_id)
        query_string: bytes = scope["query_string"]
        try:
            graphql_request = self._query_strings.read(query_string)
            self._csrf.check("GET", headers)
        except RequestRejected as rejected:
            return self._refused(exchange, rejected, media_type)
        exchange.state["operation_name"] = graphql_request.operation_name
        outcome = await self._pipeline.run(
            self._input(
                exchange, graphql_request, media_type, allowed=QUERIES_ONLY, raw=query_string
            )
        )
        return self._answer(exchange, outcome, media_type)

    def _accepts_now(self, accept: str | None) -> tuple[bool, str | None]:
        """``accepts_html`` and ``negotiate_response_type`` of an Accept header, kept for
        the next request sending it (``_KEPT_ACCEPTS`` headers at most, none longer than
        ``_LONGEST_KEPT_ACCEPT``: what is kept stays small whatever clients send)."""
        read = (accepts_html(accept), negotiate_response_type(accept))
        if len(self._accepts) < _KEPT_ACCEPTS and (
            accept is None or len(accept) <= _LONGEST_KEPT_ACCEPT
        ):
            self._accepts[accept] = read
        return read

    def _refused(self, exchange: _Exchange, rejected: RequestRejected, media_type: str) -> Response:
        """A request refused before the pipeline (unreadable, CSRF), answered as its outcome."""
        unread = GraphQLRequest(None, None, None, None)
        outcome = self._pipeline.rejected(self._input(exchange, unread, media_type), rejected)
        return self._answer(exchange, outcome, media_type)

    def _input(
        self,
        exchange: _Exchange,
        graphql_request: GraphQLRequest,
        media_type: str,
        *,
        allowed: frozenset[OperationType] = ANY_OPERATION,
        viewer: Viewer | None = None,
        raw: bytes | None = None,
    ) -> PipelineInput:
        # Every field by position, in their order: a class called with keywords has them
        # made into a dictionary and back, on every request.
        return PipelineInput(
            graphql_request,  # request
            exchange.request_id,  # request_id
            exchange.headers,  # headers
            viewer,  # viewer
            exchange.client_address,  # client_address
            client_name(exchange.headers),  # client_name
            allowed,  # allowed
            media_type,  # media_type
            False,  # operator_document
            raw,  # raw_request
        )

    def _answer(self, exchange: _Exchange, outcome: PipelineOutcome, media_type: str) -> Response:
        """One request's outcome as its HTTP response, noted for the access log."""
        _note_one(exchange.state, outcome)
        headers = response_headers(exchange.method, outcome)
        if outcome.rejection is not None:
            return _error_response(
                outcome.errors,
                media_type,
                status=_status(outcome.rejection, media_type),
                headers=headers,
            )
        # outcome.encoded() without its call: a response is there (no rejection).
        response = outcome.response
        assert response is not None
        return GraphQLAnswer(response.encoded(), media_type, headers)

    async def _batch(self, exchange: _Exchange, batch: Batch, media_type: str) -> Response:
        """Runs each item through the pipeline in turn; one array answers them in order.

        The credential is read once for the whole batch: a bad one refuses all of it.
        """
        empty = GraphQLRequest(None, None, None, None)
        try:
            viewer = await self._pipeline.authenticate(exchange.headers)
        except RequestRejected as rejected:
            outcome = self._pipeline.rejected(self._input(exchange, empty, media_type), rejected)
            return self._answer(exchange, outcome, media_type)
        outcomes: list[PipelineOutcome] = []
        for item in batch.requests:
            if isinstance(item, GatewayError):
                unreadable = self._input(exchange, empty, media_type, viewer=viewer)
                outcomes.append(self._pipeline.rejected(unreadable, RequestRejected([item])))
                continue
            item_input = self._input(exchange, item, media_type, viewer=viewer)
            outcomes.append(await self._pipeline.run(item_input))
        _note(exchange.state, outcomes, batch=True)
        headers = batch_headers([response_headers(exchange.method, o) for o in outcomes])
        body = orjson.dumps([outcome.body for outcome in outcomes])
        return Response(body, media_type=media_type, headers=headers)

    async def _read(
        self, receive: Receive, headers: Mapping[str, str]
    ) -> tuple[GraphQLRequest | Batch, frozenset[OperationType], bytes | None]:
        """The request or batch, the operation types it may run, and the body it was read
        from when equal bodies are the same request (not a batch's)."""
        is_json = content_type_is_json(headers.get("content-type"))
        if is_json is None:
            raise RequestRejected(
                [BadUserInputError("Request bodies must be encoded in UTF-8.")], status=415
            )
        if not is_json:
            raise RequestRejected(
                [BadUserInputError("POST requests must have Content-Type application/json.")],
                status=415,
            )
        body = await self._body(receive, headers)
        # The load balancer retries requests marked as queries on another replica
        # (deploy/nginx): a mutation must not pass for one and be written twice.
        allowed = (
            QUERIES_ONLY
            if headers.get(_OPERATION_TYPE_NAME, "").strip().lower() == "query"
            else ANY_OPERATION
        )
        # A body accepted before, byte for byte, is the same request: not parsed again.
        kept = self._pipeline.kept_request(body, allowed, body=True)
        if kept is not None:
            return kept, allowed, body
        try:
            params = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise RequestRejected(
                [BadUserInputError(f"The body is not valid JSON: {error.msg}.")]
            ) from None
        if isinstance(params, list):
            return read_batch(params, self._http), ANY_OPERATION, None
        if not isinstance(params, dict):
            raise RequestRejected([BadUserInputError("The body must be a JSON object.")])
        return checked_request(params), allowed, body

    async def _body(self, receive: Receive, headers: Mapping[str, str]) -> bytes:
        """The body from ``receive``'s messages, as Starlette's ``Request.stream`` reads
        them (a disconnect raises ``ClientDisconnect``), refused past ``max_body_bytes``."""
        limit = self._http.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise RequestRejected([BadUserInputError("Content-Length is not a number.")])
            if int(declared) > limit:
                raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif kind == "http.disconnect":
                raise ClientDisconnect()
        # A small body comes in one message: kept as it came, without a copy.
        if len(chunks) == 1 and type(chunks[0]) is bytes:
            return chunks[0]
        return b"".join(chunks)


def _too_large(limit: int) -> RequestRejected:
    # Made only when raised: two exception objects per request cost more than reading a
    # small body.
    return RequestRejected(
        [BadUserInputError(f"The body is larger than {limit} bytes.")], status=413
    )


def response_headers(method: str, outcome: PipelineOutcome) -> dict[str, str]:
    """The headers one request's outcome answers with, alone or as an item of a batch.

    A rejection's own (Allow, WWW-Authenticate, Retry-After…). Age on a response-cache hit;
    for GET, the @cacheControl policy as Cache-Control (what a CDN caches), and for a GET
    of a persisted document, Vary by what the answer depends on.
    """
    if outcome.rejection is not None:
        return dict(outcome.rejection.headers)
    response = outcome.response
    assert response is not None
    headers: dict[str, str] = {}
    if response.cached_age_seconds is not None:
        headers["Age"] = str(int(response.cached_age_seconds))
    if method == "GET" and response.cache_policy is not None and outcome.viewer is not None:
        headers["Cache-Control"] = response.cache_policy.header(
            anonymous=outcome.viewer.is_anonymous, has_errors=bool(response.errors)
        )
    if method == "GET" and outcome.persisted_by_id:
        headers.setdefault("Cache-Control", "no-store")
        headers["Vary"] = PERSISTED_GET_VARY
    return headers


_RAW_NAMES: dict[str, bytes] = {}
"""Header names as raw headers write them (lower-case, latin-1), by the name given: the
gateway's own few (Age, Cache-Control, Vary, a rejection's), encoded once."""
_KEPT_RAW_NAMES = 64


_ENCODED_TYPES = {name: name.encode("latin-1") for name in SUPPORTED_RESPONSE_TYPES}


class GraphQLAnswer(Response):
    """``Response(body, media_type=media_type, headers=headers)``, a 200 with a JSON media
    type and headers naming neither Content-Length nor Content-Type (those of
    ``response_headers``): the same raw headers in the same order, built in one pass
    instead of Starlette's general ``init_headers``."""

    def __init__(self, body: bytes, media_type: str, headers: Mapping[str, str]) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.body = body
        names = _RAW_NAMES
        raw = []
        for name, value in headers.items():
            raw_name = names.get(name)
            if raw_name is None:
                raw_name = name.lower().encode("latin-1")
                if len(names) < _KEPT_RAW_NAMES:
                    names[name] = raw_name
            raw.append((raw_name, value.encode("latin-1")))
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
        # The negotiated types (both constants) encoded once.
        encoded_type = _ENCODED_TYPES.get(media_type)
        if encoded_type is None:
            encoded_type = media_type.encode("latin-1")
        raw.append((b"content-type", encoded_type))
        self.raw_headers = raw


def _marked_as_query(rejected: RequestRejected, method: str) -> RequestRejected:
    """A mutation POSTed as a query: 400 naming the header, not a method-not-allowed."""
    if rejected.status != 405 or method != "POST":
        return rejected
    return RequestRejected(
        [
            BadUserInputError(
                f"The request says {OPERATION_TYPE_HEADER}: query, but its operation is not a"
                " query: drop the header (load balancers may retry requests that carry it)."
            )
        ]
    )


def batch_headers(items: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """A batch's headers, from the headers each item would answer with alone.

    A cache may keep the array only as its strictest item allows: ``no-store`` or
    ``no-cache`` of any item (an APQ miss must not be kept) holds for the batch, any other
    Cache-Control only when every item gives the same. Vary is by what any item varies by;
    other headers (Age, Retry-After, Allow…) only when every item gives the same value.
    """
    if not items:
        return {}
    common = dict(items[0])
    for item in items[1:]:
        common = {name: value for name, value in common.items() if item.get(name) == value}
    common.pop("Vary", None)
    common.pop("Cache-Control", None)
    controls = [item.get("Cache-Control") for item in items]
    strictest = next((c for c in controls if c and "no-store" in c), None) or next(
        (c for c in controls if c and "no-cache" in c), None
    )
    if strictest is not None:
        common["Cache-Control"] = strictest
    elif controls[0] is not None and all(c == controls[0] for c in controls):
        common["Cache-Control"] = controls[0]
    vary = {v.strip() for item in items for v in item.get("Vary", "").split(",") if v.strip()}
    if vary:
        common["Vary"] = ", ".join(sorted(vary))
    return common


def _note(
    state: dict[str, Any], outcomes: Sequence[PipelineOutcome], *, batch: bool = False
) -> None:
    """What the access log prints; for a batch, its operations, costs and cache as lists."""
    if not batch:
        _note_one(state, outcomes[0])
        return
    responses = [outcome.response for outcome in outcomes]
    state["operation_name"] = [outcome.operation_name for outcome in outcomes]
    state["operation_cost"] = [r.cost if r is not None else None for r in responses]
    state["response_cache"] = [r.response_cache if r is not None else None for r in responses]


def _note_one(state: dict[str, Any], outcome: PipelineOutcome) -> None:
    """What the access log prints of one request (``_note`` of one outcome, no list)."""
    state["operation_name"] = outcome.operation_name
    response = outcome.response
    if response is not None:
        state["operation_cost"] = response.cost
        state["response_cache"] = response.response_cache


@dataclass(slots=True)
class _Exchange:
    """What the endpoint reads of one HTTP request besides its body."""

    method: str
    headers: Mapping[str, str]
    client_address: str | None
    state: dict[str, Any]
    """The scope's state: the middleware's request id in, what the access log prints out."""
    request_id: str
    """The middleware's request id, read from the state once (asked several times)."""

    @classmethod
    def of(cls, scope: Scope, headers: Mapping[str, str]) -> _Exchange:
        client = scope.get("client")
        state = scope["state"]
        return cls(
            scope["method"], headers, client[0] if client else None, state, state["request_id"]
        )


def _not_acceptable(request_id: str) -> Response:
    return _error_response(
        [
            format_error(
                BadUserInputError("Accept names no supported type; send application/json."),
                request_id,
            )
        ],
        JSON,
        status=406,
    )


def _status(rejected: RequestRejected, media_type: str) -> int:
    """A GraphQL request error is 200 under application/json, as the specification says:
    legacy clients treat any other status as a transport failure and drop the errors."""
    if isinstance(rejected, DocumentRejected) and media_type == JSON:
        return 200
    return rejected.status


def _error_response(
    entries: list[dict[str, Any]],
    media_type: str,
    *,
    status: int,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"errors": entries}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)
