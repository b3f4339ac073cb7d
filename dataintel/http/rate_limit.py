"""The per-client request limit: pure ASGI middleware answering 429 with Retry-After.

Every answer carries the limit's state in ``RateLimit-Limit``, ``RateLimit-Remaining``,
``RateLimit-Reset`` (seconds) and ``RateLimit-Policy`` (draft-ietf-httpapi-ratelimit-headers).
The client is the connection's address; behind a proxy, uvicorn takes it from
X-Forwarded-For when the proxy is trusted (``--forwarded-allow-ips``). The probes and the
metrics are never limited: an orchestrator must always reach them.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dataintel.errors import RateLimitedError
from dataintel.gateway.error_format import format_error
from dataintel.gateway.rate_limiting import RateLimits
from dataintel.gateway.rate_verdict import Verdict
from dataintel.gateway.security_audit import RATE_LIMITED_ACTION, SecurityAudit
from dataintel.http.problem_details import PROBLEM_JSON, problem_body
from dataintel.observability.metrics import GatewayMetrics
from dataintel.settings import RateLimitSettings

CLIENT_REQUESTS_RULE = "client_requests"
"""The rule label of requests refused by the per-client request limit."""
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def rate_limit_headers(verdict: Verdict, window_seconds: int) -> dict[str, str]:
    """The RateLimit headers of a verdict, and Retry-After when it refused."""
    headers = {
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
        "RateLimit-Policy": f"{verdict.limit};w={window_seconds}",
    }
    if not verdict.allowed:
        headers["Retry-After"] = str(verdict.reset_seconds)
    return headers


Headers = list[tuple[bytes, bytes]]


RAW_RATE_LIMIT_HEADER_NAMES = frozenset(
    {b"ratelimit-limit", b"ratelimit-remaining", b"ratelimit-reset", b"ratelimit-policy"}
)
"""The names of an allowed request's headers (``RawRateLimitHeaders``)."""


class RawRateLimitHeaders:
    """``rate_limit_headers`` of an allowed verdict as a response's raw headers (lower-case
    names, latin-1 values, in the same order), built without the dictionary: counted on every
    request. The parts that depend on the limit alone are encoded once."""

    def __init__(self, window_seconds: int) -> None:
        self._window = window_seconds
        self._by_limit: dict[int, tuple[bytes, bytes]] = {}

    def __call__(self, verdict: Verdict) -> Headers:
        """The raw headers of an allowed verdict."""
        return self.allowed(verdict.limit, verdict.remaining, verdict.reset_seconds)

    def allowed(self, limit: int, remaining: int, reset_seconds: int) -> Headers:
        """The raw headers of an allowed verdict, from its three numbers."""
        encoded = self._by_limit.get(limit)
        if encoded is None:
            if len(self._by_limit) >= 16:
                self._by_limit.clear()
            encoded = self._by_limit[limit] = (
                str(limit).encode(),
                f"{limit};w={self._window}".encode(),
            )
        return [
            (b"ratelimit-limit", encoded[0]),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(reset_seconds).encode()),
            (b"ratelimit-policy", encoded[1]),
        ]


def with_rate_limit_headers(headers: Headers | tuple[()], added: Headers) -> Headers:
    """A response's headers with the limit's (what MutableHeaders.update does, in one pass)."""
    names = {name for name, _ in added}
    return [h for h in headers if h[0] not in names] + added


class ClientRequestLimit:
    """Counts each request against its client address; beyond the limit, 429 RATE_LIMITED.

    Shared by the middleware and the layer of /graphql (http/graphql_path.py), so both count
    and refuse the same way.
    """

    def __init__(
        self,
        *,
        rate_limit: RateLimitSettings,
        graphql_path: str,
        rate_limits: RateLimits,
        audit: SecurityAudit | None,
        metrics: GatewayMetrics | None,
    ) -> None:
        self._metrics = metrics
        self._rate_limits = rate_limits
        self._audit = audit
        self._window = rate_limit.window_seconds
        # The bound method, not the instance: calling an instance goes through its type's
        # __call__ slot, several times the cost of a method call, once per request.
        raw_headers = RawRateLimitHeaders(self._window)
        self._raw_headers = raw_headers.__call__
        self._allowed_headers = raw_headers.allowed
        self._graphql_path = graphql_path
        self.enabled = rate_limit.limits_clients

    def applies(self, path: str) -> bool:
        """Whether requests to this path are counted (the probes and metrics never are)."""
        return self.enabled and path not in EXEMPT_PATHS

    def admit_now(self, scope: Scope) -> Headers | Verdict | None:
        """``admit`` without a coroutine where this replica decides alone (all but one hit
        per batch): the headers of an allowed request; the verdict of a refused one, counted,
        for ``admit`` to answer; None when Redis must decide (nothing counted yet)."""
        client = scope.get("client")
        clients = self._rate_limits.clients
        decided = clients.allowed_now(client[0] if client else "unknown")
        if type(decided) is tuple:
            return self._allowed_headers(clients.limit, decided[0], decided[1])
        assert not isinstance(decided, tuple)
        if decided is None or not decided.allowed:
            return decided
        return self._raw_headers(decided)

    async def admit(
        self, scope: Scope, send: Send, decided: Verdict | None = None, *, asked: bool = False
    ) -> Headers | None:
        """Counts the request; the headers its response carries, or None when it was
        refused and the 429 already sent through ``send``. ``asked``: ``admit_now`` came
        first, and ``decided`` is what it gave (a refusal, counted; None: Redis decides)."""
        client = scope.get("client")
        address = client[0] if client else "unknown"
        verdict = decided
        if verdict is None:
            clients = self._rate_limits.clients
            # Decided in process on all but one hit per batch: no coroutine for those.
            if not asked:
                verdict = clients.hit_now(address)
            if verdict is None:
                verdict = await clients.hit(address)
        if not verdict.allowed:
            headers = rate_limit_headers(verdict, self._window)
            await self._refuse(scope, send, verdict, headers, address)
            return None
        return self._raw_headers(verdict)

    async def _refuse(
        self,
        scope: Scope,
        send: Send,
        verdict: Verdict,
        headers: dict[str, str],
        address: str,
    ) -> None:
        request_id = str(scope.get("state", {}).get("request_id", ""))
        if self._metrics is not None:
            self._metrics.rate_limit_rejections.labels(CLIENT_REQUESTS_RULE).inc()
        error = RateLimitedError(
            f"Too many requests: at most {verdict.limit} every {self._window} seconds"
            " from one client.",
            domain="rate_limit",
            retry_after=float(verdict.reset_seconds),
        )
        if self._audit is not None:
            self._audit.record(
                actor=f"client:{address}",
                action=RATE_LIMITED_ACTION,
                target=f"http:{scope['path']}",
                request_id=request_id or None,
                details={"limit": verdict.limit, "window": self._window},
                repeat_after_seconds=float(self._window),
            )
        entry = format_error(error, request_id)
        media_type = b"application/json"
        if scope["path"] == self._graphql_path:
            body = orjson.dumps({"errors": [entry]})
        else:
            # Every other route answers errors as problem details (docs/rest.md).
            media_type = PROBLEM_JSON.encode()
            body = orjson.dumps(problem_body([entry], 429, request_id, instance=scope["path"]))
        response_headers = [
            (b"content-type", media_type),
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in headers.items()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


class RequestRateLimitMiddleware:
    """The per-client request limit (``ClientRequestLimit``) in front of every route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate_limit: RateLimitSettings,
        graphql_path: str,
        rate_limits: RateLimits,
        audit: SecurityAudit | None,
        metrics: GatewayMetrics | None,
    ) -> None:
        self.app = app
        self.limit = ClientRequestLimit(
            rate_limit=rate_limit,
            graphql_path=graphql_path,
            rate_limits=rate_limits,
            audit=audit,
            metrics=metrics,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit.applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        added = await self.limit.admit(scope, send)
        if added is None:
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_rate_limit_headers(message.get("headers", ()), added)
            await send(message)

        await self.app(scope, receive, send_with_headers)
