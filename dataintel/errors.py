"""The typed errors of the gateway, each mapped to one published ErrorCode."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class ErrorCode(enum.Enum):
    """Machine-readable error codes carried in every error's ``extensions.code``."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"


ERROR_CODE_DESCRIPTIONS: Mapping[ErrorCode, str] = {
    ErrorCode.UNAUTHENTICATED: "The credential is missing where required, bad, expired or revoked.",
    ErrorCode.FORBIDDEN: "The viewer's roles do not allow this field.",
    ErrorCode.RATE_LIMITED: "Too many requests; retry after extensions.retryAfter seconds.",
    ErrorCode.BAD_USER_INPUT: "The request, document, variables or arguments are invalid.",
    ErrorCode.NOT_FOUND: "The object asked for does not exist.",
    ErrorCode.QUERY_TOO_COMPLEX: "The operation exceeds a depth, size or cost limit.",
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: "The persisted query hash is unknown; send the text.",
    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED: "Persisted queries are turned off.",
    ErrorCode.DEPENDENCY_UNAVAILABLE: "A dependency behind this field is down; retryable.",
    ErrorCode.TIMEOUT: "A dependency behind this field did not answer in time; retryable.",
    ErrorCode.INTERNAL: "An unexpected error; the message is masked, the request id is logged.",
}


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose; its message reaches the client."""

    code: ErrorCode = ErrorCode.INTERNAL
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        domain: str | None = None,
        retry_after: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.domain = domain
        self.retry_after = retry_after
        self.details: Mapping[str, Any] = details or {}

    def extensions(self) -> dict[str, Any]:
        """The error's typed extensions, without the request id (added when formatted)."""
        extensions: dict[str, Any] = {"code": self.code.value, "retryable": self.retryable}
        if self.domain is not None:
            extensions["domain"] = self.domain
        if self.retry_after is not None:
            extensions["retryAfter"] = self.retry_after
        extensions.update(self.details)
        return extensions


class UnauthenticatedError(GatewayError):
    code = ErrorCode.UNAUTHENTICATED


class ForbiddenError(GatewayError):
    code = ErrorCode.FORBIDDEN


class RateLimitedError(GatewayError):
    code = ErrorCode.RATE_LIMITED
    retryable = True


class BadUserInputError(GatewayError):
    code = ErrorCode.BAD_USER_INPUT


class NotFoundError(GatewayError):
    code = ErrorCode.NOT_FOUND


class QueryTooComplexError(GatewayError):
    code = ErrorCode.QUERY_TOO_COMPLEX


class PersistedQueryNotFoundError(GatewayError):
    code = ErrorCode.PERSISTED_QUERY_NOT_FOUND
    retryable = True


class PersistedQueryNotSupportedError(GatewayError):
    code = ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED


class DependencyUnavailableError(GatewayError):
    code = ErrorCode.DEPENDENCY_UNAVAILABLE
    retryable = True


class DependencyTimeoutError(GatewayError):
    code = ErrorCode.TIMEOUT
    retryable = True
