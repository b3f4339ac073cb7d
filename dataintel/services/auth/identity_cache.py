"""The short-lived cache of a user's standing (active, roles), read on every bearer request.

A gateway token carries only the user id, so every request would read the user and its roles
from the store. The standing is kept in the two-level cache under the user's tag for a few
seconds; a role change, a (de)activation or a revocation bumps that tag, and the bump reaches
every replica through the cache's invalidation feed (Redis pub/sub). When the bump cannot
reach Redis, or there is no Redis, other replicas may honour the change only after the TTL:
the TTL is the bound on staleness, and 0 turns the cache off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dataintel.cache import RecordCodec, Region, TwoLevelCache, entity_tag
from dataintel.observability.logging import get_logger

_log = get_logger("dataintel.auth")


@dataclass(frozen=True, slots=True)
class UserStanding:
    """What a bearer request needs to know of its user: whether it is active, and its roles."""

    active: bool
    roles: tuple[str, ...]


def user_tag(user_id: int) -> str:
    """The cache tag of everything cached about one user."""
    return entity_tag("user", user_id)


class IdentityCache:
    """User standings in the two-level cache for ``ttl_seconds``; invalidated by user tag."""

    def __init__(self, cache: TwoLevelCache, ttl_seconds: float) -> None:
        self._cache = cache
        self.ttl_seconds = ttl_seconds
        # No stale window: a standing must never outlive a failed reload.
        self._region: Region[int, UserStanding] = Region(
            "auth.standing",
            RecordCodec([UserStanding]),
            str,
            lambda user_id: (user_tag(user_id),),
            ttl_seconds,
            0.0,
        )

    @property
    def enabled(self) -> bool:
        """Whether standings are cached at all."""
        return self.ttl_seconds > 0 and self._cache.enabled

    async def standing(
        self, user_id: int, load: Callable[[], Awaitable[UserStanding]]
    ) -> UserStanding:
        """The user's standing, cached or loaded (a load that raises caches nothing)."""
        if not self.enabled:
            return await load()
        return await self._cache.fetch(self._region, user_id, load)

    async def forget(self, user_id: int) -> None:
        """Drops the user's standing here and, through Redis, on every replica."""
        if not await self._cache.invalidate([user_tag(user_id)]):
            _log.warning(
                "identity change not published; other replicas keep the old one up to the TTL",
                user_id=user_id,
                ttl_seconds=self.ttl_seconds,
            )
