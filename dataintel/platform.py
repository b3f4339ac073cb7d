"""What the services are built over: the store and Redis behind their breakers, and the cache."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from dataintel.cache import MemoryCache, SharedCache, TwoLevelCache
from dataintel.cache.redis_connection import create_redis
from dataintel.cache.shared import is_redis_failure
from dataintel.resilience import Dependencies, Dependency, DependencyPolicy
from dataintel.settings import CacheSettings, RedisSettings, StoreSettings
from dataintel.store.guarded import GuardedEngine, StoreEngine, is_store_failure


@dataclass(frozen=True, slots=True)
class Platform:
    """The guarded dependencies of one process and its two-level cache."""

    dependencies: Dependencies
    store: GuardedEngine
    cache: TwoLevelCache


def store_dependency(settings: StoreSettings) -> Dependency:
    """The store's breaker and time budget, from the settings."""
    policy = DependencyPolicy(
        timeout_seconds=settings.call_timeout_seconds,
        fail_max=settings.breaker_failures,
        reset_timeout_seconds=settings.breaker_reset_seconds,
    )
    return Dependency("store", "sql", policy, is_store_failure)


def redis_dependency(settings: RedisSettings) -> Dependency:
    """Redis's breaker and time budget, from the settings."""
    policy = DependencyPolicy(
        timeout_seconds=settings.call_timeout_seconds,
        fail_max=settings.breaker_failures,
        reset_timeout_seconds=settings.breaker_reset_seconds,
    )
    return Dependency("redis", "redis", policy, is_redis_failure)


def build_platform(
    store_settings: StoreSettings,
    redis_settings: RedisSettings,
    cache_settings: CacheSettings,
    engine: StoreEngine,
    redis: Redis | None,
) -> Platform:
    """Breakers and budgets per dependency; the cache, over Redis when there is one."""
    store = store_dependency(store_settings)
    guarded = [store]
    shared = None
    if redis is not None:
        guarded.append(redis_dependency(redis_settings))
        shared = SharedCache(redis, guarded[-1], redis_settings.key_prefix)
    cache = TwoLevelCache(
        MemoryCache(cache_settings.memory_entries, cache_settings.memory_bytes),
        shared,
        enabled=cache_settings.enabled,
    )
    return Platform(
        Dependencies(guarded),
        GuardedEngine(engine, store, store_settings.batch_timeout_seconds),
        cache,
    )


async def invalidate_shared(settings: RedisSettings, tags: Sequence[str]) -> bool:
    """Invalidates tags on every replica from outside the app (the CLI); False without Redis."""
    redis = create_redis(settings)
    if redis is None:
        return False
    try:
        shared = SharedCache(redis, redis_dependency(settings), settings.key_prefix)
        return await shared.bump(list(tags))
    finally:
        await redis.aclose()
