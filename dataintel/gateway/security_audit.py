"""Denied sensitive fields and rate-limit refusals, written to the audit log off the response path.

A write is scheduled, never awaited by the request: the audit log serializes its appends, and
a slow or failing store must not slow or fail the answer. The same actor, action and target
are written at most once per ``repeat_after_seconds`` in each replica, so a client hammering
a limit cannot turn the audit log into the bottleneck it is being protected from.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from dataintel.audit_events import DENIED, AuditEvent
from dataintel.observability.logging import get_logger
from dataintel.rbac import Actor

DENIED_ACTION = "policy.denied"
RATE_LIMITED_ACTION = "rate_limit.exceeded"
_MAX_REMEMBERED = 10_000
_log = get_logger("dataintel.audit")


class AuditLog(Protocol):
    """Where entries are appended (services/audit.py's AuditService is the app's)."""

    async def append(self, event: AuditEvent) -> object:
        """Writes one entry."""
        ...


class SecurityAudit:
    """Schedules audit entries for denials; drops repeats and, under overload, the excess."""

    def __init__(
        self,
        audit: Callable[[], AuditLog | None],
        *,
        repeat_after_seconds: float = 60.0,
        max_pending: int = 100,
    ) -> None:
        self._audit = audit
        self._repeat_after = repeat_after_seconds
        self._max_pending = max_pending
        self._written_until: dict[tuple[str, str, str], float] = {}
        self._pending: set[asyncio.Task[Any]] = set()

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        request_id: str | None,
        details: Mapping[str, Any],
        repeat_after_seconds: float | None = None,
    ) -> None:
        """Schedules one entry, unless the same one was written within the repeat interval."""
        audit = self._audit()
        if audit is None:
            return
        now = time.monotonic()
        key = (actor, action, target)
        if self._written_until.get(key, 0.0) > now:
            return
        if len(self._pending) >= self._max_pending:
            _log.warning("audit entry dropped: too many writes pending", action=action)
            return
        if len(self._written_until) >= _MAX_REMEMBERED:
            self._written_until = {k: t for k, t in self._written_until.items() if t > now}
        interval = self._repeat_after if repeat_after_seconds is None else repeat_after_seconds
        self._written_until[key] = now + interval
        event = AuditEvent(actor, action, target, DENIED, request_id, dict(details))
        task = asyncio.get_running_loop().create_task(audit.append(event))
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            _log.warning("audit entry not written", error=type(error).__name__)

    async def drain(self, timeout_seconds: float = 2.0) -> None:
        """Waits a little for scheduled writes, e.g. before the store closes at shutdown."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout_seconds)


def actor_name(user_id: str | None) -> str:
    """How the audit log names a viewer: user:<id>, an identity provider's subject, anonymous."""
    return Actor(user_id).audit_name
