"""The HTTP floor: a bare Starlette app answering every GET with the same ready bytes.

``BENCH_BODY_FILE`` names the file holding the bytes (the gateway's own answer).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def bare_app(body: bytes) -> Starlette:
    """A Starlette app answering GET /graphql with ``body``, as JSON."""

    async def ready_bytes(_: Request) -> Response:
        """The same bytes, as JSON."""
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/graphql", ready_bytes, methods=["GET"])])


app = bare_app(Path(os.environ.get("BENCH_BODY_FILE", "/dev/null")).read_bytes())
