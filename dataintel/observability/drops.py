"""Work this process gave up on so that a request would not wait or fail: counted, by kind.

Each kind is bookkeeping the gateway chose to lose rather than slow or fail an answer; a
count that grows says which dependency to look at. The counts are this process's since it
started; ``status`` shows them and the metrics export them as ``dataintel_dropped_total``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

AUDIT_QUEUE_OVERFLOW = "audit_queue_overflow"
"""An audit entry nobody awaited found the audit writer's queue full."""
AUDIT_WRITE_FAILED = "audit_write_failed"
"""An audit entry nobody awaited was in a batch the store refused."""
API_KEY_TOUCH_FAILED = "api_key_touch_failed"
"""An API key's last use could not be written (the request went on)."""
APQ_STORE_FAILED = "apq_store_failed"
"""An automatic persisted query could not be shared through Redis (the request went on)."""
KINDS = (AUDIT_QUEUE_OVERFLOW, AUDIT_WRITE_FAILED, API_KEY_TOUCH_FAILED, APQ_STORE_FAILED)


@dataclass(frozen=True, slots=True)
class DropCounts:
    """The counts at one moment."""

    audit_queue_overflow: int = 0
    audit_write_failed: int = 0
    api_key_touch_failed: int = 0
    apq_store_failed: int = 0


class Drops:
    """This process's drop counters; ``observer`` (the metrics) is told of each drop."""

    def __init__(self) -> None:
        self._counts = dict.fromkeys(KINDS, 0)
        self.observer: Callable[[str, int], None] | None = None

    def count(self, kind: str, number: int = 1) -> None:
        """Counts ``number`` drops of one kind."""
        if kind not in self._counts:
            raise ValueError(f"unknown kind of drop: {kind}")
        self._counts[kind] += number
        if self.observer is not None:
            self.observer(kind, number)

    def counts(self) -> DropCounts:
        """The counts now."""
        return DropCounts(**self._counts)
