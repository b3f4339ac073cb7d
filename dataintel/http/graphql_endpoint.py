"""/graphql: GraphQL over HTTP (GET and POST), and GraphiQL for browsers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson
from graphql import OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

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
    accepts_html,
    content_type_is_json,
    negotiate_response_type,
)
from dataintel.http.query_strings import QueryStringRequests, checked_request
from dataintel.services.schema_usage import client_name
from dataintel.settings import HttpSettings

OPERATION_TYPE_HEADER = "X-GraphQL-Operation-Type"
"""Marks a POST as a query, which a load balancer may retry (deploy/nginx)."""


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint as an ASGI app: Starlette's function-endpoint wrapper (a second layer
        of exception handlers per request) has nothing to catch here, ``handle`` returns
        every answer as a response."""
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answers one request to the GraphQL path."""
        accept = request.headers.get("accept")
        if (
            request.method == "GET"
            and self._graphiql is not None
            and accepts_html(accept)
            and "query" not in request.query_params
            and "extensions" not in request.query_params
            and "documentId" not in request.query_params
        ):
            return self._graphiql()
        media_type = negotiate_response_type(accept)
        request_id: str = request.state.request_id
        if media_type is None:
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
        try:
            graphql_request, allowed = await self._read(request)
            self._csrf.check(request.method, request.headers)
        except RequestRejected as rejected:
            unread = GraphQLRequest(None, None, None, None)
            outcome = self._pipeline.rejected(self._input(request, unread, media_type), rejected)
            return self._answer(request, outcome, media_type)
        if isinstance(graphql_request, Batch):
            return await self._batch(request, graphql_request, media_type)
        request.state.operation_name = graphql_request.operation_name
        outcome = await self._pipeline.run(
            self._input(request, graphql_request, media_type, allowed=allowed)
        )
        if outcome.rejection is not None:
            marked = _marked_as_query(outcome.rejection, request)
            if marked is not outcome.rejection:
                entries = [format_error(e, request.state.request_id) for e in marked.errors]
                outcome = replace(outcome, rejection=marked, errors=entries)
        return self._answer(request, outcome, media_type)

    def _input(
        self,
        request: Request,
        graphql_request: GraphQLRequest,
        media_type: str,
        *,
        allowed: frozenset[OperationType] = ANY_OPERATION,
        viewer: Viewer | None = None,
    ) -> PipelineInput:
        return PipelineInput(
            request=graphql_request,
            request_id=request.state.request_id,
            headers=request.headers,
            viewer=viewer,
            client_address=request.client.host if request.client else None,
            client_name=client_name(request.headers),
            allowed=allowed,
            media_type=media_type,
        )

    def _answer(self, request: Request, outcome: PipelineOutcome, media_type: str) -> Response:
        """One request's outcome as its HTTP response, noted for the access log."""
        _note(request, [outcome])
        headers = response_headers(request.method, outcome)
        if outcome.rejection is not None:
            return _error_response(
                outcome.errors,
                media_type,
                status=_status(outcome.rejection, media_type),
                headers=headers,
            )
        return Response(outcome.encoded(), media_type=media_type, headers=headers)

    async def _batch(self, request: Request, batch: Batch, media_type: str) -> Response:
        """Runs each item through the pipeline in turn; one array answers them in order.

        The credential is read once for the whole batch: a bad one refuses all of it.
        """
        empty = GraphQLRequest(None, None, None, None)
        try:
            viewer = await self._pipeline.authenticate(request.headers)
        except RequestRejected as rejected:
            outcome = self._pipeline.rejected(self._input(request, empty, media_type), rejected)
            return self._answer(request, outcome, media_type)
        outcomes: list[PipelineOutcome] = []
        for item in batch.requests:
            if isinstance(item, GatewayError):
                unreadable = self._input(request, empty, media_type, viewer=viewer)
                outcomes.append(self._pipeline.rejected(unreadable, RequestRejected([item])))
                continue
            item_input = self._input(request, item, media_type, viewer=viewer)
            outcomes.append(await self._pipeline.run(item_input))
        _note(request, outcomes, batch=True)
        headers = batch_headers([response_headers(request.method, o) for o in outcomes])
        body = orjson.dumps([outcome.body for outcome in outcomes])
        return Response(body, media_type=media_type, headers=headers)

    async def _read(
        self, request: Request
    ) -> tuple[GraphQLRequest | Batch, frozenset[OperationType]]:
        if request.method == "GET":
            return self._query_strings.read(request.scope["query_string"]), QUERIES_ONLY
        is_json = content_type_is_json(request.headers.get("content-type"))
        if is_json is None:
            raise RequestRejected(
                [BadUserInputError("Request bodies must be encoded in UTF-8.")], status=415
            )
        if not is_json:
            raise RequestRejected(
                [BadUserInputError("POST requests must have Content-Type application/json.")],
                status=415,
            )
        body = await self._body(request)
        try:
            params = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise RequestRejected(
                [BadUserInputError(f"The body is not valid JSON: {error.msg}.")]
            ) from None
        if isinstance(params, list):
            return read_batch(params, self._http), ANY_OPERATION
        if not isinstance(params, dict):
            raise RequestRejected([BadUserInputError("The body must be a JSON object.")])
        if request.headers.get(OPERATION_TYPE_HEADER, "").strip().lower() == "query":
            # The load balancer retries requests marked as queries on another replica
            # (deploy/nginx): a mutation must not pass for one and be written twice.
            return checked_request(params), QUERIES_ONLY
        return checked_request(params), ANY_OPERATION

    async def _body(self, request: Request) -> bytes:
        limit = self._http.max_body_bytes
        too_large = RequestRejected(
            [BadUserInputError(f"The body is larger than {limit} bytes.")], status=413
        )
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise RequestRejected([BadUserInputError("Content-Length is not a number.")])
            if int(declared) > limit:
                raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return bytes(body)


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


def _marked_as_query(rejected: RequestRejected, request: Request) -> RequestRejected:
    """A mutation POSTed as a query: 400 naming the header, not a method-not-allowed."""
    if rejected.status != 405 or request.method != "POST":
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


def _note(request: Request, outcomes: Sequence[PipelineOutcome], *, batch: bool = False) -> None:
    """What the access log prints; for a batch, its operations, costs and cache as lists."""
    if not batch:
        outcome = outcomes[0]
        request.state.operation_name = outcome.operation_name
        if outcome.response is not None:
            request.state.operation_cost = outcome.response.cost
            request.state.response_cache = outcome.response.response_cache
        return
    responses = [outcome.response for outcome in outcomes]
    request.state.operation_name = [outcome.operation_name for outcome in outcomes]
    request.state.operation_cost = [r.cost if r is not None else None for r in responses]
    request.state.response_cache = [r.response_cache if r is not None else None for r in responses]


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
