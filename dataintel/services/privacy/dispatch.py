"""How a verified subject request's work gets run: handed to the job system, or run here.

``InProcessDispatcher`` runs the job functions as background tasks of the serving process
(bounded by nothing but the number of verified requests): the state lives in
subject_requests, but a run interrupted by a restart stays IN_PROGRESS until re-run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dataintel.observability.logging import get_logger
from dataintel.services.auth import Actor

ACCESS_KIND = "gdpr.access"
ERASURE_KIND = "gdpr.erasure"
KIND_BY_TYPE: Mapping[str, str] = {"ACCESS": ACCESS_KIND, "ERASURE": ERASURE_KIND}
"""The job kind doing the work of each request type."""

JobRun = Callable[[Any, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]

_log = get_logger("dataintel.privacy")


class WorkDispatcher(Protocol):
    """Starts the work of a job kind; returns the job's id."""

    async def dispatch(
        self, kind: str, params: Mapping[str, Any], actor: Actor, idempotency_key: str
    ) -> str: ...


@dataclass(slots=True)
class _TaskContext:
    job_id: str
    requested_by: str
    progress: float = 0.0
    stop_requested: bool = False

    async def report_progress(self, fraction: float) -> None:
        self.progress = max(self.progress, min(1.0, fraction))

    def cancelled(self) -> bool:
        return self.stop_requested


@dataclass(slots=True)
class InProcessDispatcher:
    """Runs job functions as tasks of this process, once per idempotency key."""

    runs: dict[str, JobRun] = field(default_factory=dict)
    _tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    _by_key: dict[str, str] = field(default_factory=dict)

    def register(self, kind: str, run: JobRun) -> None:
        """Makes ``kind`` runnable by ``run``."""
        self.runs[kind] = run

    async def dispatch(
        self, kind: str, params: Mapping[str, Any], actor: Actor, idempotency_key: str
    ) -> str:
        """Starts ``run(context, params)`` in the background; the same key starts it once."""
        if idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        run = self.runs[kind]
        job_id = str(uuid.uuid4())
        context = _TaskContext(job_id, actor.audit_name)
        self._by_key[idempotency_key] = job_id
        self._tasks[job_id] = asyncio.create_task(self._run(run, context, dict(params), kind))
        return job_id

    async def _run(
        self, run: JobRun, context: _TaskContext, params: Mapping[str, Any], kind: str
    ) -> Mapping[str, Any] | None:
        try:
            return await run(context, params)
        except Exception:
            # The job function has already recorded the failure on its request.
            _log.exception("in-process job failed", job=context.job_id, kind=kind)
            return None

    async def wait(self, job_id: str) -> Mapping[str, Any] | None:
        """The result of a job started here (None when it failed)."""
        result: Mapping[str, Any] | None = await self._tasks[job_id]
        return result

    async def aclose(self) -> None:
        """Lets running jobs finish: an erasure stopped midway is left half done."""
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
