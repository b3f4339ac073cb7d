"""Denied sensitive fields and rate-limit refusals, written to the audit log off the response path.

An entry is submitted to the audit log's writer queue, never awaited by the request: a slow
or failing store must not slow or fail the answer (a full queue drops and counts it). The
same actor, action and target are written at most once per ``repeat_after_seconds`` in each
replica, so a client hammering a limit cannot turn the audit log into the bottleneck it is
being protected from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from dataintel.audit_events import DENIED, AuditEvent
from dataintel.rbac import Actor

DENIED_ACTION = "policy.denied"
RATE_LIMITED_ACTION = "rate_limit.exceeded"
_MAX_REMEMBERED = 10_000


class AuditLog(Protocol):
    """Where entries are queued (services/audit.py's AuditService is the app's)."""

    def submit(self, event: AuditEvent) -> bool:
        """Queues one entry nobody waits for; False when it was dropped."""
        ...


class SecurityAudit:
    """Submits audit entries for denials; drops repeats."""

    def __init__(
        self,
        audit: Callable[[], AuditLog | None],
        *,
        repeat_after_seconds: float = 60.0,
    ) -> None:
        self._audit = audit
        self._repeat_after = repeat_after_seconds
        self._written_until: dict[tuple[str, str, str], float] = {}

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
        """Submits one entry, unless the same one was written within the repeat interval."""
        audit = self._audit()
        if audit is None:
            return
        now = time.monotonic()
        key = (actor, action, target)
        if self._written_until.get(key, 0.0) > now:
            return
        if len(self._written_until) >= _MAX_REMEMBERED:
            self._written_until = {k: t for k, t in self._written_until.items() if t > now}
        interval = self._repeat_after if repeat_after_seconds is None else repeat_after_seconds
        self._written_until[key] = now + interval
        event = AuditEvent(actor, action, target, DENIED, request_id, dict(details))
        # Queued for the audit writer: a full queue drops (and counts) it there.
        audit.submit(event)


def actor_name(user_id: str | None) -> str:
    """How the audit log names a viewer: user:<id>, an identity provider's subject, anonymous."""
    return Actor(user_id).audit_name
