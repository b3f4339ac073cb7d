"""Two app instances sharing one Redis, each subscribed to the invalidation feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

import httpx
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.cache.invalidation_feed import InvalidationFeed
from dataintel.settings import Settings
from tests.plugins.app import serving


class Replica:
    """One app instance and its client."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client

    @property
    def feed(self) -> InvalidationFeed:
        """The app's invalidation feed: bumps made anywhere reach its memory through it."""
        feed: InvalidationFeed = self.app.state.invalidation_feed
        return feed

    async def hears(self, received: int) -> None:
        """Waits until the feed has applied ``received`` messages: the bound of staleness."""
        async with asyncio.timeout(10):
            await self.feed.wait_for(received=received)


Made = TypeVar("Made", bound=Replica)


@asynccontextmanager
async def two_replicas(
    settings: Settings, replica: Callable[[Starlette, httpx.AsyncClient], Made]
) -> AsyncIterator[tuple[Made, Made]]:
    """Two served instances of the app, each listening to the feed before it is handed out."""
    async with AsyncExitStack() as stack:
        made: list[Made] = []
        for _ in range(2):
            app = create_app(settings)
            made.append(replica(app, await stack.enter_async_context(serving(app))))
            async with asyncio.timeout(10):
                await made[-1].feed.wait_for(subscriptions=1)
        yield made[0], made[1]
