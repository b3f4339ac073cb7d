"""/healthz (liveness) and /readyz (readiness) for the orchestrator."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dataintel.http.drain import drain_of
from dataintel.services import Services
from dataintel.services.status import DependencyStatus


async def liveness(_: Request) -> Response:
    """The process answers; nothing else is checked, so a down store never restarts it."""
    return JSONResponse({"status": "ok"})


def readiness_endpoint(services: Callable[[], Services]) -> Callable[[Request], object]:
    """/readyz: 200 when every required dependency answers, 503 naming the ones that do not.

    A dependency that is not required (Redis, by default) is reported with its breaker but
    does not fail readiness: the gateway serves without it, and taking every replica out of
    the load balancer for a shared cache outage would turn a slowdown into an outage.
    After SIGTERM it answers 503 "draining" (dataintel/server.py).
    """

    async def readiness(request: Request) -> Response:
        drain = drain_of(request)
        if drain is not None and drain.draining:
            # First, before any check: the load balancer must stop sending new requests.
            return JSONResponse({"status": "draining"}, status_code=503)
        checks = await services().status.check_dependencies()
        failed = [check.name for check in checks if check.state != "up" and check.required]
        degraded = [check.name for check in checks if check.state != "up" and not check.required]
        body = {
            "status": "unavailable" if failed else "degraded" if degraded else "ready",
            "failed": failed,
            "degraded": degraded,
            "checks": {check.name: _check(check) for check in checks},
        }
        return JSONResponse(body, status_code=503 if failed else 200)

    return readiness


def _check(check: DependencyStatus) -> dict[str, object]:
    breaker = check.breaker
    return {
        "kind": check.kind,
        "state": check.state,
        "required": check.required,
        "latencyMs": check.latency_ms,
        "detail": check.detail,
        "breaker": None
        if breaker is None
        else {
            "state": breaker.state,
            "failures": breaker.failures,
            "failMax": breaker.fail_max,
            "retryAfterSeconds": breaker.retry_after_seconds,
            "changedAt": breaker.changed_at.isoformat() if breaker.changed_at else None,
        },
    }
