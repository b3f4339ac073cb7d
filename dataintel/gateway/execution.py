"""The execute stage of the pipeline, and the response it builds.

The other stages are in gateway/pipeline.py; this one runs graphql-core on a prepared
document, with the GatedExecutor answering the fields the policy stage denied.

Another engine plugs in at ``OperationExecution.run``: it receives the PreparedDocument
(its operations and per-operation analyses, which live and are evicted with it) and the
request context, whose ``denied_fields.for_node(node)`` gives the error a field resolves
to instead of running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import TYPE_CHECKING, Any

import orjson
from graphql import ExecutionResult, GraphQLError, GraphQLSchema

from dataintel.cache import trace_request
from dataintel.context import RequestContext
from dataintel.errors import DependencyTimeoutError
from dataintel.gateway.gated_executor import GatedExecutor
from dataintel.gateway.planned import PlannedExecution
from dataintel.gateway.request import DocumentRejected, GraphQLRequest, RequestRejected
from dataintel.gateway.response_cache import CachePolicy
from dataintel.loop_turns import take_turn
from dataintel.settings import GraphQLSettings

if TYPE_CHECKING:
    from dataintel.cache.freshness import RequestTrace
    from dataintel.gateway.documents import PreparedDocument


@dataclass(slots=True)
class GraphQLResponse:
    """A response with data: a 200 under either media type."""

    data: dict[str, Any] | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    extensions: dict[str, Any] = field(default_factory=dict)
    operation_name: str | None = None
    cache_policy: CachePolicy | None = None
    """The operation's @cacheControl policy; None when response caching is off."""
    cached_age_seconds: float | None = None
    """How old the response is, when it came whole from the response cache."""
    operation_type: str = "unknown"
    cost: int | None = None
    response_cache: str = "bypass"
    """hit, miss, or bypass (the operation is not cacheable or caching is off)."""
    encoded_data: bytes | None = None
    """``data`` as JSON already, when the response cache kept it so (a hit)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: data always present, errors and extensions only when not empty."""
        body: dict[str, Any] = {"data": self.data}
        if self.errors:
            body["errors"] = self.errors
        if self.extensions:
            body["extensions"] = self.extensions
        return body

    def encoded(self) -> bytes:
        """The JSON body as bytes; ``data`` is not serialized again when it is at hand."""
        if self.encoded_data is None:
            return orjson.dumps(self.to_dict())
        if not self.errors and not self.extensions:
            # What orjson writes for {"data": Fragment(encoded_data)}, without the dictionary.
            # One join: two concatenations would copy the data twice.
            return b"".join((b'{"data":', self.encoded_data, b"}"))
        body = self.to_dict()
        body["data"] = orjson.Fragment(self.encoded_data)
        return orjson.dumps(body)


@dataclass(frozen=True, slots=True)
class ExecutedOperation:
    """What graphql-core answered, before the errors are formatted."""

    data: dict[str, Any] | None
    errors: list[GraphQLError]
    trace: RequestTrace
    """The cache tags and versions the execution read (the response cache keys on them)."""


class OperationExecution:
    """The execute stage: graphql-core with the GatedExecutor, within the request timeout."""

    def __init__(self, schema: GraphQLSchema, graphql: GraphQLSettings, *, max_errors: int) -> None:
        self._schema = schema
        self._timeout = graphql.request_timeout_seconds
        self._max_errors = max_errors
        self.planned = PlannedExecution(schema, graphql.document_cache_size)
        self.planned_enabled = graphql.planned_execution
        """Run operations from plans (docs/performance.md); off: graphql-core for all."""

    async def run(
        self,
        prepared: PreparedDocument,
        request: GraphQLRequest,
        context: RequestContext,
        hide_suggestions: bool,
    ) -> ExecutedOperation:
        """Executes the operation; variables that do not coerce raise DocumentRejected and a
        run past the timeout raises RequestRejected (504)."""
        # A warm execution never waits on anything: without a turn of the loop between
        # slices, the loop would run every ready request to its end before it took in the
        # next connection (dataintel/loop_turns.py).
        await take_turn()
        raw_variables = dict(request.variables) if request.variables else None
        if self.planned_enabled:
            planned = self.planned.execute_raw(
                prepared.document,
                request.operation_name,
                context,
                raw_variables,
                hide_suggestions,
                self._max_errors,
            )
            if isinstance(planned, list):
                raise DocumentRejected(planned)
            if planned is not None:
                return await self._within_timeout(lambda: planned)
        # Building the executor coerces the variables: errors here mean nothing ran, so
        # they are request errors, told apart by where they come from, not by their shape.
        executor = GatedExecutor.build(
            self._schema,
            prepared.document,
            context_value=context,
            raw_variable_values=raw_variables,
            operation_name=request.operation_name,
            hide_suggestions=hide_suggestions,
            max_coercion_errors=self._max_errors,
        )
        if isinstance(executor, list):
            raise DocumentRejected(executor)
        if self.planned_enabled:
            return await self._within_timeout(
                lambda: self.planned.execute_coerced(
                    executor, prepared.document, request.operation_name, hide_suggestions
                )
            )
        return await self._within_timeout(lambda: executor.execute_operation())

    async def _within_timeout(self, execute: Callable[[], object]) -> ExecutedOperation:
        """Runs an execution within the request timeout, recording what it reads through
        the cache (graphql-core resolves synchronous fields as soon as it is called)."""
        try:
            async with asyncio.timeout(self._timeout):
                with trace_request() as trace:
                    result = execute()
                    if isawaitable(result):
                        result = await result
        except TimeoutError:
            timeout = DependencyTimeoutError(
                f"The request did not finish within {self._timeout:g} seconds.",
                retry_after=1.0,
            )
            raise RequestRejected([timeout], status=504) from None
        assert isinstance(result, ExecutionResult)
        return ExecutedOperation(result.data, list(result.errors or ()), trace)
