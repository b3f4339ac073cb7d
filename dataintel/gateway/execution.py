"""Runs one GraphQL request: cached document, operation checks, execution, error format."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
)
from opentelemetry.trace import get_current_span

from dataintel.cache import trace_request
from dataintel.context import RequestContext
from dataintel.errors import BadUserInputError, DependencyTimeoutError
from dataintel.gateway.documents import DocumentCache
from dataintel.gateway.error_format import format_error
from dataintel.gateway.gated_executor import GatedExecutor
from dataintel.gateway.introspection import IntrospectionPolicy
from dataintel.gateway.limits import DocumentLimits, OperationCost
from dataintel.gateway.planned import PlannedExecution
from dataintel.gateway.policy import FieldGate
from dataintel.gateway.request import DocumentRejected, GraphQLRequest, RequestRejected
from dataintel.gateway.response_cache import CachePolicy, ResponseCache
from dataintel.services.schema_usage import SchemaUsageService
from dataintel.settings import Settings


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: data always present, errors and extensions only when not empty."""
        body: dict[str, Any] = {"data": self.data}
        if self.errors:
            body["errors"] = self.errors
        if self.extensions:
            body["extensions"] = self.extensions
        return body


class GraphQLExecutor:
    """Executes requests against the schema; raises RequestRejected for request errors."""

    def __init__(
        self,
        schema: GraphQLSchema,
        settings: Settings,
        responses: ResponseCache | None = None,
        gate: FieldGate | None = None,
        usage: SchemaUsageService | None = None,
    ) -> None:
        self._schema = schema
        self._responses = responses
        self._timeout = settings.request_timeout_seconds
        self.documents = DocumentCache(
            schema,
            size=settings.document_cache_size,
            max_length=settings.max_query_length,
            introspection=settings.introspection,
            limits=DocumentLimits.from_settings(settings),
            max_errors=settings.max_errors,
        )
        self._max_errors = settings.max_errors
        self._introspection = IntrospectionPolicy(settings)
        self.cost = OperationCost(schema, settings)
        self.gate = gate or FieldGate(schema, settings)
        self.usage = usage
        # One call site for both engines: the planned one falls back to graphql-core itself.
        self.planned = PlannedExecution(schema, settings.document_cache_size)
        self._execute = self.planned.execute if settings.planned_execution else execute

    async def execute(
        self,
        request: GraphQLRequest,
        context: RequestContext,
        *,
        allowed: frozenset[OperationType] = frozenset(OperationType),
    ) -> GraphQLResponse:
        """Executes the request; request errors raise RequestRejected with their status."""
        if request.query is None:
            raise RequestRejected([BadUserInputError("The 'query' parameter is required.")])
        hide_suggestions = self._introspection.hides_suggestions(context.viewer)
        prepared = self.documents.get(request.query, hide_suggestions=hide_suggestions)
        self._introspection.check(prepared.uses_introspection, context.viewer)
        operation = prepared.operation(request.operation_name)
        if operation is None:
            raise DocumentRejected(
                [_unknown_operation(request.operation_name, prepared.operations)]
            )
        if operation.operation not in allowed:
            raise RequestRejected(
                [
                    BadUserInputError(
                        f"A {operation.operation.value} cannot be sent with this method."
                    )
                ],
                status=405,
                headers={"Allow": "POST"},
            )
        operation_name = operation.name.value if operation.name else None
        operation_type = operation.operation.value
        span = get_current_span()
        if span.is_recording():
            span.update_name(f"{operation_type} {operation_name or 'anonymous'}")
            span.set_attributes(
                {
                    "graphql.operation.type": operation_type,
                    "graphql.operation.name": operation_name or "",
                    "graphql.document.hash": prepared.document_hash,
                }
            )
        cost = self.cost.check(prepared, operation, request.variables)
        if span.is_recording():
            span.set_attribute("dataintel.cost", cost)
        await self.gate.enforce(prepared, operation, context)
        if self.usage is not None:
            coordinates = prepared.coordinates.get(operation_name, frozenset())
            self.usage.record(coordinates, context.viewer.user_id, context.client_name)
        # Whole-response caching comes after every check that may reject the request.
        policy = cache_key = generation = None
        if self._responses is not None:
            policy = self._responses.policy(prepared, operation)
            cache_key = self._responses.key(
                prepared, operation_name, request.variables, context.viewer, policy
            )
        # A denied or rate-limited field must not be answered from another request's response.
        if cache_key is not None and self._responses is not None and not context.denied_fields:
            cached = await self._responses.lookup(cache_key)
            if span.is_recording():
                span.set_attribute("dataintel.response_cache", "miss" if cached is None else "hit")
            if cached is not None:
                return GraphQLResponse(
                    data=cached.data,
                    extensions=dict(context.response_extensions),
                    operation_name=operation_name,
                    cache_policy=policy,
                    cached_age_seconds=cached.age_seconds,
                    operation_type=operation_type,
                    cost=cost,
                    response_cache="hit",
                )
            generation = self._responses.generation()
        try:
            async with asyncio.timeout(self._timeout):
                with trace_request() as trace:
                    result = self._execute(
                        self._schema,
                        prepared.document,
                        context_value=context,
                        variable_values=dict(request.variables) if request.variables else None,
                        operation_name=request.operation_name,
                        executor_class=GatedExecutor,
                        hide_suggestions=hide_suggestions,
                        max_coercion_errors=self._max_errors,
                    )
                    if isawaitable(result):
                        result = await result
        except TimeoutError:
            timeout = DependencyTimeoutError(
                f"The request did not finish within {self._timeout:g} seconds.",
                retry_after=1.0,
            )
            raise RequestRejected([timeout], status=504) from None
        assert isinstance(result, ExecutionResult)
        raw_errors = result.errors or []
        if result.data is None and raw_errors and all(e.path is None for e in raw_errors):
            # Variables that do not coerce: nothing ran, so this is a request error.
            raise DocumentRejected(raw_errors)
        extensions = dict(context.response_extensions)
        if len(raw_errors) > self._max_errors:
            # A list of a thousand failing items must not answer a thousand errors.
            extensions["omittedErrors"] = len(raw_errors) - self._max_errors
            raw_errors = raw_errors[: self._max_errors]
        errors = [format_error(error, context.request_id) for error in raw_errors]
        if self._responses and cache_key and policy and result.data and not errors:
            await self._responses.store(cache_key, result.data, trace, policy, generation)
        return GraphQLResponse(
            data=result.data,
            errors=errors,
            extensions=extensions,
            operation_name=operation_name,
            cache_policy=policy,
            operation_type=operation_type,
            cost=cost,
            response_cache="miss" if generation is not None else "bypass",
        )


def _unknown_operation(
    name: str | None, operations: Mapping[str | None, OperationDefinitionNode]
) -> BadUserInputError:
    named = sorted(n for n in operations if n is not None)
    if name is None:
        return BadUserInputError(
            "The document holds several operations; name one in operationName.",
            details={"operations": named},
        )
    return BadUserInputError(f"Unknown operation named '{name}'.", details={"operations": named})
