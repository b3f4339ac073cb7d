"""How a verified subject request's work is handed to the job system."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from dataintel.services.auth import Actor
from dataintel.services.jobs import JobService

ACCESS_KIND = "gdpr.access"
ERASURE_KIND = "gdpr.erasure"
KIND_BY_TYPE: Mapping[str, str] = {"ACCESS": ACCESS_KIND, "ERASURE": ERASURE_KIND}
"""The job kind doing the work of each request type."""


class WorkDispatcher(Protocol):
    """Starts the work of a job kind; returns the job's id."""

    async def dispatch(
        self, kind: str, params: Mapping[str, Any], actor: Actor, idempotency_key: str
    ) -> str: ...

    async def cancel(self, job_id: str) -> None: ...


class JobServiceDispatcher:
    """Enqueues the work as a job: SAQ for `dataintel worker`, or the server's own pool."""

    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    async def dispatch(
        self, kind: str, params: Mapping[str, Any], actor: Actor, idempotency_key: str
    ) -> str:
        """Enqueues once per idempotency key (a repeated verify finds the same job)."""
        job = await self._jobs.enqueue(
            kind, params, actor.audit_name, idempotency_key, actor.request_id
        )
        return job.id

    async def cancel(self, job_id: str) -> None:
        """Cancels a queued job, or asks a running one to stop."""
        await self._jobs.cancel(job_id)
