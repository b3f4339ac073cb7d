"""GET /openapi.json: the generated document, rendered once when the app is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dataintel.openapi import render_openapi


def openapi_endpoint(document: dict[str, Any]) -> Callable[[Request], Awaitable[Response]]:
    """The handler answering the document (it changes only with a new configuration)."""
    body = render_openapi(document)

    async def serve(_: Request) -> Response:
        return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})

    return serve
