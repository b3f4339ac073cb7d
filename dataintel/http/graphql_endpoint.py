"""/graphql: GraphQL over HTTP (GET and POST), and GraphiQL for browsers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from graphql import OperationType
from starlette.requests import Request
from starlette.responses import Response

from dataintel.context import ANONYMOUS, RequestContext
from dataintel.errors import BadUserInputError, GatewayError
from dataintel.gateway.error_format import format_error
from dataintel.gateway.execution import GraphQLExecutor
from dataintel.gateway.request import GraphQLRequest, RequestRejected
from dataintel.http.media_types import (
    JSON,
    accepts_html,
    content_type_is_json,
    negotiate_response_type,
)
from dataintel.loaders import create_loaders
from dataintel.services import Services
from dataintel.settings import Settings

QUERIES_ONLY = frozenset({OperationType.QUERY})
ANY_OPERATION = frozenset(OperationType)


class GraphQLEndpoint:
    """Turns HTTP requests into GraphQL requests and results into spec-conformant responses."""

    def __init__(
        self,
        executor: GraphQLExecutor,
        settings: Settings,
        services: Callable[[], Services],
        graphiql: Callable[[], Response] | None,
    ) -> None:
        self._executor = executor
        self._settings = settings
        self._services = services
        self._graphiql = graphiql

    async def handle(self, request: Request) -> Response:
        """Answers one request to the GraphQL path."""
        accept = request.headers.get("accept")
        if (
            request.method == "GET"
            and self._graphiql is not None
            and accepts_html(accept)
            and "query" not in request.query_params
            and "extensions" not in request.query_params
        ):
            return self._graphiql()
        media_type = negotiate_response_type(accept)
        request_id: str = request.state.request_id
        if media_type is None:
            return _error_response(
                [BadUserInputError("Accept names no supported type; send application/json.")],
                request_id,
                JSON,
                status=406,
            )
        try:
            graphql_request, allowed = await self._read(request)
            request.state.operation_name = graphql_request.operation_name
            context = self._context(request, request_id)
            response = await self._executor.execute(graphql_request, context, allowed=allowed)
        except RequestRejected as rejected:
            return _error_response(
                rejected.errors,
                request_id,
                media_type,
                status=rejected.status,
                headers=rejected.headers,
            )
        request.state.operation_name = response.operation_name
        return Response(orjson.dumps(response.to_dict()), media_type=media_type)

    def _context(self, request: Request, request_id: str) -> RequestContext:
        services = self._services()
        return RequestContext(
            request_id=request_id,
            viewer=ANONYMOUS,
            loaders=create_loaders(services, self._settings),
            services=services,
            settings=self._settings,
            client_address=request.client.host if request.client else None,
        )

    async def _read(self, request: Request) -> tuple[GraphQLRequest, frozenset[OperationType]]:
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
            raise RequestRejected([BadUserInputError("Batched requests are not enabled.")])
        if not isinstance(params, dict):
            raise RequestRejected([BadUserInputError("The body must be a JSON object.")])
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


def _from_query_string(query_params: Mapping[str, str]) -> GraphQLRequest:
    params: dict[str, Any] = {
        "query": query_params.get("query"),
        "operationName": query_params.get("operationName") or None,
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


def _error_response(
    errors: Any,
    request_id: str,
    media_type: str,
    *,
    status: int,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"errors": [format_error(error, request_id) for error in errors]}
    return Response(orjson.dumps(body), status_code=status, media_type=media_type, headers=headers)
