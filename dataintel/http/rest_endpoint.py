"""/api/v1: published trusted operations as plain HTTP, a thin adapter over the GraphQL pipeline.

Each request becomes a GraphQLRequest for its operation's document and variables and makes
one call into the same execution path as /graphql (operation limits, field policy, rate
limits, response cache, partial data); only the framing differs: the data as JSON, errors
as problem details, ETag and Cache-Control from @cacheControl on queries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dataintel.context import Viewer
from dataintel.errors import BadUserInputError, GatewayError
from dataintel.gateway.error_format import format_error
from dataintel.gateway.execution import GraphQLResponse
from dataintel.gateway.pipeline import PipelineInput, RequestPipeline
from dataintel.gateway.published_operations import REST_PREFIX, PublishedOperation
from dataintel.gateway.request import GraphQLRequest, RequestRejected
from dataintel.http.authentication import challenge
from dataintel.http.media_types import content_type_is_json
from dataintel.http.problem_details import problem_response, status_for
from dataintel.http.rest_parameters import variables_from_body, variables_from_text
from dataintel.services.schema_usage import client_name
from dataintel.settings import HttpSettings

VARY = "Authorization, X-API-Key"
"""A response depends on the credential; a CDN must key its copies by it."""


def entity_tag(body: bytes) -> str:
    """A strong ETag: the SHA-256 of the exact body, shortened."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches_if_none_match(header: str | None, tag: str) -> bool:
    """Whether If-None-Match names this tag (weak comparison, RFC 9110 13.1.2) or is ``*``."""
    if header is None:
        return False
    wanted = tag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


class RestEndpoint:
    """Answers the published operations; one route each."""

    def __init__(
        self,
        pipeline: RequestPipeline,
        http: HttpSettings,
        operations: Sequence[PublishedOperation],
    ) -> None:
        self._pipeline = pipeline
        self._http = http
        self.operations = tuple(operations)

    def routes(self) -> list[Route]:
        """One route per published operation, under REST_PREFIX."""
        return [
            Route(
                REST_PREFIX + operation.path,
                self._handler(operation),
                methods=[operation.method],
                name=f"rest:{operation.operation_name}",
            )
            for operation in self.operations
        ]

    def _handler(self, operation: PublishedOperation) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            return await self.handle(operation, request)

        return handle

    async def handle(self, operation: PublishedOperation, request: Request) -> Response:
        """Runs the operation for one request and frames the result."""
        request_id: str = request.state.request_id
        request.state.operation_name = operation.operation_name
        try:
            variables = await self._variables(operation, request)
        except RequestRejected as rejected:
            entries = [format_error(error, request_id) for error in rejected.errors]
            return self._rejected(request, rejected, entries, request_id)
        graphql_request = GraphQLRequest(
            query=operation.document,
            variables=variables,
            operation_name=operation.operation_name,
            extensions=None,
        )
        # The one call into the GraphQL pipeline, as /graphql makes it.
        outcome = await self._pipeline.run(
            PipelineInput(
                request=graphql_request,
                request_id=request_id,
                headers=request.headers,
                client_address=request.client.host if request.client else None,
                client_name=client_name(request.headers),
                allowed=frozenset({operation.operation_type}),
                operator_document=True,
            )
        )
        if outcome.rejection is not None:
            return self._rejected(request, outcome.rejection, outcome.errors, request_id)
        response = outcome.response
        assert response is not None
        assert outcome.viewer is not None
        request.state.operation_cost = response.cost
        request.state.response_cache = response.response_cache
        return self._answer(operation, request, response, outcome.viewer, request_id)

    def _rejected(
        self,
        request: Request,
        rejected: RequestRejected,
        entries: list[dict[str, Any]],
        request_id: str,
    ) -> Response:
        return problem_response(
            entries,
            rejected.status if rejected.status >= 400 else 400,
            request_id,
            instance=request.url.path,
            headers=rejected.headers,
        )

    def _answer(
        self,
        operation: PublishedOperation,
        request: Request,
        response: GraphQLResponse,
        viewer: Viewer,
        request_id: str,
    ) -> Response:
        if response.errors:
            status = status_for(response.errors)
            return problem_response(
                response.errors,
                status,
                request_id,
                instance=request.url.path,
                data=response.data,
                # RFC 9110: a 401 says how to authenticate.
                headers={"WWW-Authenticate": challenge()} if status == 401 else None,
            )
        body = orjson.dumps(response.data)
        if operation.operation_type != OperationType.QUERY:
            return Response(
                body, media_type="application/json", headers={"Cache-Control": "no-store"}
            )
        policy = response.cache_policy
        headers = {
            "ETag": entity_tag(body),
            "Cache-Control": policy.header(anonymous=viewer.is_anonymous, has_errors=False)
            if policy is not None
            else "no-store",
            "Vary": VARY,
        }
        if response.cached_age_seconds is not None:
            headers["Age"] = str(int(response.cached_age_seconds))
        if matches_if_none_match(request.headers.get("if-none-match"), headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    async def _variables(self, operation: PublishedOperation, request: Request) -> dict[str, Any]:
        try:
            if operation.method == "GET":
                query = {key: request.query_params.getlist(key) for key in request.query_params}
                return variables_from_text(operation, request.path_params, query)
            return variables_from_body(operation, await self._body(request))
        except GatewayError as error:
            raise RequestRejected([error]) from None
        except GraphQLError as error:
            raise RequestRejected([BadUserInputError(error.message)]) from None

    async def _body(self, request: Request) -> bytes:
        is_json = content_type_is_json(request.headers.get("content-type"))
        if not is_json:
            # Also what keeps a browser from posting here cross-site without a preflight.
            raise RequestRejected(
                [BadUserInputError("Send the variables as a JSON object (application/json).")],
                status=415,
            )
        limit = self._http.max_body_bytes
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RequestRejected(
                    [BadUserInputError(f"The body is larger than {limit} bytes.")], status=413
                )
        return bytes(body)
