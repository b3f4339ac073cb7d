"""Revoked bearer tokens: a deny-list of token ids (``jti``), each kept until its token expires.

With Redis the list is shared by every replica: a token revoked on one is refused by all
from the next request on. Each replica also keeps the revocations it made itself, so they
hold while Redis is unreachable. Without Redis (the embedded default) the list lives in this
process only and does not survive a restart; docs/security.md says so.

A check that cannot reach Redis answers from this replica's own list and is logged: refusing
every signed-in request while Redis is down would turn a cache outage into a full one.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis

from dataintel.errors import GatewayError
from dataintel.observability.logging import get_logger
from dataintel.resilience import Dependency

_log = get_logger("dataintel.auth")


class TokenRevocations(Protocol):
    """Records revoked token ids and answers whether one is revoked."""

    async def revoke(self, token_id: str, expires_at: datetime) -> None: ...

    async def is_revoked(self, token_id: str) -> bool: ...


def _seconds_left(expires_at: datetime) -> float:
    return (expires_at - datetime.now(UTC)).total_seconds()


class MemoryTokenRevocations:
    """The deny-list of this process, each id dropped once its token has expired."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        """Refuses the token from now until it expires."""
        now = time.monotonic()
        self._until = {key: until for key, until in self._until.items() if until > now}
        left = _seconds_left(expires_at)
        if left > 0:
            self._until[token_id] = now + left

    async def is_revoked(self, token_id: str) -> bool:
        """Whether the token was revoked here and has not expired since."""
        until = self._until.get(token_id)
        return until is not None and until > time.monotonic()


class RedisTokenRevocations:
    """The deny-list in Redis (a key per id, expiring with its token), shared by replicas."""

    def __init__(self, redis: Redis, dependency: Dependency, prefix: str) -> None:
        self._redis = redis
        self._dependency = dependency
        self._prefix = f"{prefix}revoked-token:"
        self._local = MemoryTokenRevocations()

    async def revoke(self, token_id: str, expires_at: datetime) -> None:
        """Refuses the token on every replica; DEPENDENCY_UNAVAILABLE when Redis is down."""
        await self._local.revoke(token_id, expires_at)
        left = _seconds_left(expires_at)
        if left <= 0:
            return
        milliseconds = max(1, math.ceil(left * 1000))
        key = self._prefix + token_id
        await self._dependency.call(lambda: self._redis.set(key, b"1", px=milliseconds))

    async def is_revoked(self, token_id: str) -> bool:
        """Whether any replica revoked the token (this replica's list while Redis is down)."""
        if await self._local.is_revoked(token_id):
            return True
        key = self._prefix + token_id
        try:
            found = await self._dependency.call(lambda: self._redis.exists(key))
        except GatewayError as error:
            _log.warning(
                "token revocations unreadable; checking this replica's", error=error.message
            )
            return False
        return bool(found)
