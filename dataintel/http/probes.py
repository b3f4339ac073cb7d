"""/healthz (liveness) and /readyz (readiness) for the orchestrator."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dataintel.services import Services


async def liveness(_: Request) -> Response:
    """The process answers; nothing else is checked, so a down store never restarts it."""
    return JSONResponse({"status": "ok"})


def readiness_endpoint(services: Callable[[], Services]) -> Callable[[Request], object]:
    """/readyz: 200 when every dependency answers, 503 naming the ones that do not."""

    async def readiness(_: Request) -> Response:
        checks = await services().status.check_dependencies()
        failed = [check.name for check in checks if check.state != "up"]
        body = {
            "status": "unavailable" if failed else "ready",
            "failed": failed,
            "checks": {
                check.name: {
                    "kind": check.kind,
                    "state": check.state,
                    "latencyMs": check.latency_ms,
                    "detail": check.detail,
                }
                for check in checks
            },
        }
        return JSONResponse(body, status_code=503 if failed else 200)

    return readiness
