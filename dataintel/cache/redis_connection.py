"""The Redis client, with timeouts and retries set so a down Redis fails fast."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dataintel.settings import Settings


def create_redis(settings: Settings) -> Redis | None:
    """A client for settings.redis.url, or None when the gateway runs without Redis."""
    if settings.redis.url is None:
        return None
    timeout = settings.redis.call_timeout_seconds
    # redis-py's defaults (5 s socket timeout, 10 retries) would stall requests for seconds.
    return Redis.from_url(
        settings.redis.url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
        max_connections=settings.redis.max_connections,
    )
