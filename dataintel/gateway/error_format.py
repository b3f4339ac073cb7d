"""Turns errors into the response's error entries: typed extensions, unexpected ones masked."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from dataintel.errors import ErrorCode, GatewayError
from dataintel.observability.logging import get_logger
from dataintel.observability.tracing import trace_ids

MASKED_MESSAGE = "Internal server error."
_log = get_logger("dataintel.errors")


def format_error(error: GraphQLError | GatewayError, request_id: str) -> dict[str, Any]:
    """One entry of the response's errors list, with code and requestId in its extensions."""
    if isinstance(error, GatewayError):
        return _entry(error.message, error.extensions(), request_id)
    entry: dict[str, Any]
    original = error.original_error
    if isinstance(original, GatewayError):
        entry = _entry(original.message, original.extensions(), request_id)
    elif error.path is None:
        # No path: the request itself is wrong (syntax, validation, variables).
        extensions = {"code": ErrorCode.BAD_USER_INPUT.value, **(error.extensions or {})}
        entry = _entry(error.message, extensions, request_id)
    elif original is not None and not isinstance(original, GraphQLError):
        _log.error(
            "unexpected error in resolver",
            path=error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        entry = _entry(MASKED_MESSAGE, {"code": ErrorCode.INTERNAL.value}, request_id)
    else:
        # graphql-core's own execution errors (e.g. null in a non-null field) are server faults.
        _log.error("execution error", path=error.path, message=error.message)
        entry = _entry(error.message, {"code": ErrorCode.INTERNAL.value}, request_id)
    if error.locations:
        entry["locations"] = [location._asdict() for location in error.locations]
    if error.path is not None:
        entry["path"] = error.path
    return entry


def _entry(message: str, extensions: dict[str, Any], request_id: str) -> dict[str, Any]:
    extensions.setdefault("retryable", False)
    extensions["requestId"] = request_id
    ids = trace_ids()
    if ids is not None:
        extensions["traceId"] = ids[0]
    return {"message": message, "extensions": extensions}
