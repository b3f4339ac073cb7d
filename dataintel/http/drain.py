"""Draining: after SIGTERM the replica fails /readyz but keeps serving, so the load balancer
takes it out before it stops listening."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DRAIN_STATE_KEY = "drain"
"""Key of the `Drain` in the ASGI lifespan state, where the server hands it to the app."""


@dataclass(slots=True)
class Drain:
    """Whether this process is draining, and since when (monotonic seconds)."""

    started_at: float | None = field(default=None)

    @property
    def draining(self) -> bool:
        """True from the first SIGTERM until the process exits."""
        return self.started_at is not None

    def start(self) -> None:
        """Marks the process as draining; a second call keeps the first moment."""
        if self.started_at is None:
            self.started_at = time.monotonic()


def drain_of(connection: HTTPConnection) -> Drain | None:
    """The server's `Drain`, from the lifespan state; None when the server gave none (tests)."""
    drain = connection.scope.get("state", {}).get(DRAIN_STATE_KEY)
    return drain if isinstance(drain, Drain) else None


class DrainingConnectionMiddleware:
    """While draining, answers with ``Connection: close`` so clients (and nginx's keepalive
    pool) open their next request elsewhere instead of reusing a socket about to close."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        drain = scope.get("state", {}).get(DRAIN_STATE_KEY)

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and is_draining(drain):
                message = {**message, "headers": closing(message.get("headers", []))}
            await send(message)

        await self.app(scope, receive, send_closing)


def is_draining(drain: object) -> bool:
    """Whether the ``Drain`` found in the lifespan state (if any) says the process drains."""
    return isinstance(drain, Drain) and drain.draining


def closing(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A response's headers saying ``Connection: close`` (and no other Connection)."""
    kept = [(name, value) for name, value in headers if name.lower() != b"connection"]
    return [*kept, (b"connection", b"close")]
