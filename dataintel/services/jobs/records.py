"""The records of the job system: a job as the store holds it, its states and list filters."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class JobStatus(enum.StrEnum):
    """Where a job stands: QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED; then EXPIRED."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


TERMINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class Job:
    """One job as its record of truth (the store's ``jobs`` table) holds it."""

    id: str
    kind: str
    status: JobStatus
    requested_by: str
    params: Mapping[str, Any]
    progress: float
    attempts: int
    max_attempts: int
    error_code: str | None
    error_message: str | None
    result: Mapping[str, Any] | None
    idempotency_key: str | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None

    @property
    def is_terminal(self) -> bool:
        """Whether the job will not change any more (except SUCCEEDED → EXPIRED)."""
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a list shows; every criterion given must hold."""

    requested_by: str | None = None
    """Only this requester's jobs (None: everyone's, for admins)."""
    statuses: tuple[JobStatus, ...] | None = None
    kinds: tuple[str, ...] | None = None
