"""The Redis client, with timeouts and retries set so a down Redis fails fast."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dataintel.settings import RedisSettings


def create_redis(settings: RedisSettings) -> Redis | None:
    """A client for settings.url, or None when the gateway runs without Redis."""
    if settings.url is None:
        return None
    timeout = settings.socket_timeout_seconds
    # redis-py's defaults (5 s socket timeout, 10 retries) would stall requests for seconds.
    return Redis.from_url(
        settings.url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), retries=1),
        health_check_interval=30,
        max_connections=settings.max_connections,
    )
