"""How a command reaches the store, Redis and the running servers' caches.

Each command runs its async work on a fresh engine or client and closes it; a store or
Redis failure ends the command with one line on stderr (exit status 1), not a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from dataintel.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def run_on_store(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Runs one store task on a fresh engine and disposes of it; store failures in one line."""
    from dataintel.store.diagnosis import STORE_FAILURES, describe_store_failure
    from dataintel.store.engine import create_engine, store_url

    try:
        store_url(settings.store.database_url)
    except ValueError as error:
        raise click.ClickException(str(error)) from None

    async def main() -> T:
        engine = create_engine(settings.store)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except STORE_FAILURES as error:
        raise click.ClickException(
            describe_store_failure(error, settings.store.database_url)
        ) from None


def run_on_redis(settings: Settings, work: Callable[[Redis], Awaitable[T]]) -> T:
    """Runs one task on a fresh Redis client and closes it; a missing or down Redis exits 1."""
    import redis.exceptions

    from dataintel.cache.redis_connection import create_redis

    async def main() -> T:
        client = create_redis(settings.redis)
        if client is None:
            raise click.ClickException(
                "DATAINTEL_REDIS_URL is not set: trusted documents live in Redis."
            )
        try:
            return await work(client)
        except (redis.exceptions.RedisError, OSError) as error:
            raise click.ClickException(f"Redis did not answer: {error}") from None
        finally:
            await client.aclose()

    return asyncio.run(main())


async def invalidate_everywhere(settings: Settings, engine: AsyncEngine, tags: list[str]) -> None:
    """Invalidates cached entries on every server: through Redis, or through the store without.

    Servers without Redis poll the store's tag versions (DATAINTEL_CACHE_TAG_POLL_SECONDS).
    """
    from dataintel.cache.store_tags import bump_tags
    from dataintel.platform import invalidate_shared

    if settings.redis.url is None:
        await bump_tags(engine, tags)
    elif not await invalidate_shared(settings.redis, tags):
        click.echo(
            "warning: Redis did not take the invalidation; replicas serve what they cached"
            " until its TTL",
            err=True,
        )
