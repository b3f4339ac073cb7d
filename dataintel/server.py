"""The uvicorn server `dataintel serve` runs: SIGTERM drains before it stops.

On the first SIGTERM the server marks the `Drain` it handed the app (so /readyz answers 503
"draining") and keeps accepting requests for ``shutdown_drain_seconds``, the time a load
balancer or Kubernetes needs to stop sending new ones. Then uvicorn's own graceful shutdown
runs: it stops listening, lets in-flight requests finish for ``shutdown_timeout_seconds``
(then cancels them), and the app's lifespan closes the Redis and store pools. A second
SIGTERM, or SIGINT, skips the drain period. The process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import uvicorn

from dataintel.http.drain import DRAIN_STATE_KEY, Drain
from dataintel.observability.logging import get_logger

_log = get_logger("dataintel.server")


class DrainingServer(uvicorn.Server):
    """`uvicorn.Server` with a drain period between SIGTERM and the graceful shutdown."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain = Drain()
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.TimerHandle | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Hands the `Drain` to the app through the ASGI lifespan state, then starts."""
        self._loop = asyncio.get_running_loop()
        self.lifespan.state[DRAIN_STATE_KEY] = self.drain
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM starts the drain; anything else (or a second SIGTERM) stops at once."""
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        if self.drain.draining or self._loop is None:
            # A second SIGTERM, or one before the app started: nothing to drain for.
            self._stop()
            return
        self.drain.start()
        _log.info("draining", seconds=self.drain_seconds)
        # A signal handler runs between bytecodes of the loop's thread: schedule, do not act.
        self._loop.call_soon_threadsafe(self._schedule_stop)

    def _schedule_stop(self) -> None:
        assert self._loop is not None
        self._draining = self._loop.call_later(self.drain_seconds, self._stop)

    def _stop(self) -> None:
        # Not recorded as a captured signal: uvicorn would raise it again on the way out and
        # the process would die by SIGTERM instead of exiting 0 after a clean shutdown.
        if self._draining is not None:
            self._draining.cancel()
        self.should_exit = True
