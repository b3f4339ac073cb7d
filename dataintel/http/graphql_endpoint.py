"""/graphql: GraphQL over HTTP (GET and POST), and GraphiQL for browsers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from graphql import OperationType
from opentelemetry.trace import Span, Status, StatusCode
from starlette.requests import Request
from starlette.responses import Response

from dataintel.context import RequestContext, Viewer
from dataintel.errors import BadUserInputError, GatewayError
from dataintel.gateway.batching import Batch, read_batch
from dataintel.gateway.error_format import format_error
from dataintel.gateway.execution import GraphQLExecutor, GraphQLResponse
from dataintel.gateway.persisted_queries import PERSISTED_GET_VARY, PersistedQueries
from dataintel.gateway.request import DocumentRejected, GraphQLRequest, RequestRejected
from dataintel.http.authentication import Authenticator
from dataintel.http.csrf import CsrfPrevention
from dataintel.http.media_types import (
    JSON,
    accepts_html,
    content_type_is_json,
    negotiate_response_type,
)
from dataintel.loaders import create_loaders
from dataintel.observability.metrics import GatewayMetrics
from dataintel.observability.tracing import operation_span
from dataintel.services import Services
from dataintel.services.schema_usage import client_name
from dataintel.settings import Settings

QUERIES_ONLY = frozenset({OperationType.QUERY})
OPERATION_TYPE_HEADER = "X-GraphQL-Operation-Type"
ANY_OPERATION = frozenset(OperationType)


class GraphQLEndpoint:
    """Turns HTTP requests into GraphQL requests and results into spec-conformant responses."""

    def __init__(
        self,
        executor: GraphQLExecutor,
        settings: Settings,
        services: Callable[[], Services],
        graphiql: Callable[[], Response] | None,
        persisted: PersistedQueries | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._executor = executor
        self._settings = settings
        self._services = services
        self._graphiql = graphiql
        self._authenticator = Authenticator(services)
        self._csrf = CsrfPrevention.from_settings(settings)
        # Without Redis the persisted documents live in this process only.
        self._persisted = persisted or PersistedQueries(settings, executor.documents, lambda: None)

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
        started = time.perf_counter()
        with operation_span() as span:
            try:
                graphql_request, allowed = await self._read(request)
                if isinstance(graphql_request, Batch):
                    return await self._batch(request, graphql_request, media_type, request_id)
                self._csrf.check(request.method, request.headers)
                request.state.operation_name = graphql_request.operation_name
                viewer = await self._authenticator.viewer(request.headers)
                by_id = graphql_request.query is None
                persisted = by_id or bool(
                    graphql_request.extensions and "persistedQuery" in graphql_request.extensions
                )
                if span is not None:
                    span.set_attribute("dataintel.persisted", persisted)
                graphql_request = await self._persisted.resolve(graphql_request, media_type)
                context = self._context(request, request_id, viewer)
                try:
                    response = await self._executor.execute(
                        graphql_request, context, allowed=allowed
                    )
                except RequestRejected as rejected:
                    raise _marked_as_query(rejected, request) from None
            except RequestRejected as rejected:
                entries = [format_error(error, request_id) for error in rejected.errors]
                operation_name = getattr(request.state, "operation_name", None)
                self._record(operation_name, "unknown", started, entries, span)
                return _error_response(
                    entries,
                    media_type,
                    status=_status(rejected, media_type),
                    headers=rejected.headers,
                )
            self._record(
                response.operation_name, response.operation_type, started, response.errors, span
            )
        request.state.operation_name = response.operation_name
        request.state.operation_cost = response.cost
        request.state.response_cache = response.response_cache
        headers = _cache_headers(request, response, viewer)
        if by_id and request.method == "GET":
            # What a CDN caches: the @cacheControl policy says how long, Vary for whom.
            headers.setdefault("Cache-Control", "no-store")
            headers["Vary"] = PERSISTED_GET_VARY
        return Response(orjson.dumps(response.to_dict()), media_type=media_type, headers=headers)

    def _record(
        self,
        operation_name: str | None,
        operation_type: str,
        started: float,
        errors: list[dict[str, Any]],
        span: Span | None,
    ) -> None:
        """Counts the operation and its errors; marks the span of an operation that failed."""
        if span is not None and errors:
            span.set_attribute("dataintel.error_count", len(errors))
            codes = sorted({str(e.get("extensions", {}).get("code")) for e in errors})
            span.set_status(Status(StatusCode.ERROR, ",".join(codes)))
        if self._metrics is not None:
            self._metrics.record_operation(
                self._metrics.operation(operation_name),
                operation_type,
                time.perf_counter() - started,
                errors,
            )

    def _context(self, request: Request, request_id: str, viewer: Viewer) -> RequestContext:
        services = self._services()
        return RequestContext(
            request_id=request_id,
            viewer=viewer,
            loaders=create_loaders(services, self._settings),
            services=services,
            settings=self._settings,
            client_address=request.client.host if request.client else None,
            client_name=client_name(request.headers),
        )

    async def _batch(
        self, request: Request, batch: Batch, media_type: str, request_id: str
    ) -> Response:
        """Runs a batch's requests in turn; each answers as it would alone, in one array."""
        self._csrf.check(request.method, request.headers)
        viewer = await self._authenticator.viewer(request.headers)
        answers: list[dict[str, Any]] = []
        for item in batch.requests:
            try:
                if isinstance(item, GatewayError):
                    raise RequestRejected([item])
                resolved = await self._persisted.resolve(item, media_type)
                context = self._context(request, request_id, viewer)
                started = time.perf_counter()
                response = await self._executor.execute(resolved, context, allowed=ANY_OPERATION)
            except RequestRejected as rejected:
                entries = [format_error(e, request_id) for e in rejected.errors]
                self._record(None, "unknown", time.perf_counter(), entries, None)
                answers.append({"errors": entries})
            else:
                self._record(
                    response.operation_name, response.operation_type, started, response.errors, None
                )
                answers.append(response.to_dict())
        return Response(orjson.dumps(answers), media_type=media_type)

    async def _read(
        self, request: Request
    ) -> tuple[GraphQLRequest | Batch, frozenset[OperationType]]:
        if request.method == "GET":
            return _from_query_string(request.query_params), QUERIES_ONLY
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
            return read_batch(params, self._settings), ANY_OPERATION
        if not isinstance(params, dict):
            raise RequestRejected([BadUserInputError("The body must be a JSON object.")])
        if request.headers.get(OPERATION_TYPE_HEADER, "").strip().lower() == "query":
            # The load balancer retries requests marked as queries on another replica
            # (deploy/nginx): a mutation must not pass for one and be written twice.
            return _checked(params), QUERIES_ONLY
        return _checked(params), ANY_OPERATION

    async def _body(self, request: Request) -> bytes:
        limit = self._settings.max_body_bytes
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


def _cache_headers(request: Request, response: GraphQLResponse, viewer: Viewer) -> dict[str, str]:
    """Cache-Control for GET (what a CDN caches: persisted queries by hash), Age on a hit."""
    headers: dict[str, str] = {}
    if response.cached_age_seconds is not None:
        headers["Age"] = str(int(response.cached_age_seconds))
    if request.method == "GET" and response.cache_policy is not None:
        headers["Cache-Control"] = response.cache_policy.header(
            anonymous=viewer.is_anonymous, has_errors=bool(response.errors)
        )
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


def _from_query_string(query_params: Mapping[str, str]) -> GraphQLRequest:
    params: dict[str, Any] = {
        "query": query_params.get("query"),
        "operationName": query_params.get("operationName") or None,
        "documentId": query_params.get("documentId") or None,
    }
    for name in ("variables", "extensions"):
        raw = query_params.get(name)
        if raw:
            try:
                params[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise RequestRejected(
                    [BadUserInputError(f"The '{name}' parameter is not valid JSON.")]
                ) from None
    return _checked(params)


def _checked(params: Mapping[str, Any]) -> GraphQLRequest:
    try:
        return GraphQLRequest.from_params(params)
    except GatewayError as error:
        raise RequestRejected([error]) from None


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
