"""RFC 9457 problem details: how the REST endpoints answer an error.

The body carries the RFC's members (``type``, ``title``, ``status``, ``detail``,
``instance``) and the gateway's own beside them: the first error's ``code`` (ErrorCode),
``requestId``, ``retryable`` and ``retryAfter``, every GraphQL error in ``errors``, and, when
some of the operation's data could be read, that ``data`` (the fields in ``errors`` are null
in it). docs/rest.md shows examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

from dataintel.errors import ErrorCode

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:dataintel:problem:"
"""A problem's ``type`` is this prefix and its ErrorCode, e.g. urn:dataintel:problem:NOT_FOUND."""

STATUS_BY_CODE: Mapping[str, int] = {
    ErrorCode.UNAUTHENTICATED.value: 401,
    ErrorCode.FORBIDDEN.value: 403,
    ErrorCode.RATE_LIMITED.value: 429,
    ErrorCode.BAD_USER_INPUT.value: 400,
    ErrorCode.NOT_FOUND.value: 404,
    ErrorCode.QUERY_TOO_COMPLEX.value: 400,
    ErrorCode.PERSISTED_QUERY_NOT_FOUND.value: 404,
    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED.value: 400,
    ErrorCode.DEPENDENCY_UNAVAILABLE.value: 503,
    ErrorCode.TIMEOUT.value: 504,
    ErrorCode.INTERNAL.value: 500,
}
TITLES: Mapping[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def code_of(entry: Mapping[str, Any]) -> str:
    """The ErrorCode of one formatted GraphQL error entry."""
    extensions = entry.get("extensions") or {}
    return str(extensions.get("code", ErrorCode.INTERNAL.value))


def status_for(entries: Sequence[Mapping[str, Any]]) -> int:
    """The status of execution errors: the first error's code decides."""
    return STATUS_BY_CODE.get(code_of(entries[0]), 500) if entries else 500


def problem_body(
    entries: Sequence[Mapping[str, Any]],
    status: int,
    request_id: str,
    *,
    instance: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The problem document for formatted GraphQL errors (at least one)."""
    first = entries[0]
    extensions = first.get("extensions") or {}
    code = code_of(first)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": str(first.get("message", "")),
        "code": code,
        "requestId": request_id,
        "retryable": bool(extensions.get("retryable", False)),
        "errors": list(entries),
    }
    if instance is not None:
        body["instance"] = instance
    retry_after = extensions.get("retryAfter")
    if isinstance(retry_after, int | float):
        body["retryAfter"] = retry_after
    if data is not None:
        body["data"] = data
    return body


def problem_response(
    entries: Sequence[Mapping[str, Any]],
    status: int,
    request_id: str,
    *,
    instance: str | None = None,
    data: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An ``application/problem+json`` response for formatted GraphQL errors."""
    body = problem_body(entries, status, request_id, instance=instance, data=data)
    response_headers = dict(headers or {})
    retry_after = body.get("retryAfter")
    if retry_after is not None and "Retry-After" not in response_headers and status in (429, 503):
        response_headers["Retry-After"] = str(max(1, round(retry_after)))
    response_headers.setdefault("Cache-Control", "no-store")
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=response_headers
    )
