"""One attempt of one job, the same in the worker and in the embedded pool.

The runner claims the job in the store, runs its kind's function beside a heartbeat that
also carries cancel requests in, enforces the kind's timeout, and writes the outcome. It
decides retries from the store's attempt count, not from the queue's: the store is the
record of truth, and the queue only delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dataintel.observability.logging import get_logger
from dataintel.services.jobs.kinds import JobCancelled, JobFailure, JobKind, JobKinds
from dataintel.services.jobs.records import Job, JobStatus
from dataintel.services.jobs.store import JobStore

_log = get_logger("dataintel.jobs")


@dataclass(frozen=True, slots=True)
class Retry:
    """The attempt failed and the job is QUEUED again: deliver it after ``delay_seconds``."""

    delay_seconds: float


@dataclass(frozen=True, slots=True)
class Done:
    """The attempt ended the job, or there was nothing to run."""


Outcome = Retry | Done


class _RunContext:
    """The JobContext handed to a kind's function."""

    def __init__(self, store: JobStore, job: Job, claim: str) -> None:
        self._store = store
        self._job = job
        self._claim = claim
        self._progress = job.progress
        self.cancel_seen = False

    @property
    def job_id(self) -> str:
        return self._job.id

    @property
    def requested_by(self) -> str:
        return self._job.requested_by

    @property
    def attempt(self) -> int:
        return self._job.attempts + 1

    async def report_progress(self, fraction: float) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction <= self._progress:
            return
        self._progress = fraction
        await self._store.progress(self._job.id, self._claim, fraction)

    def cancelled(self) -> bool:
        return self.cancel_seen

    def raise_if_cancelled(self) -> None:
        if self.cancel_seen:
            raise JobCancelled(self._job.id)


class JobRunner:
    """Runs attempts of jobs whose kinds it knows."""

    def __init__(
        self,
        store: JobStore,
        kinds: JobKinds,
        heartbeat_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._kinds = kinds
        self._heartbeat_seconds = heartbeat_seconds
        self._clock = clock

    async def run(self, job_id: str) -> Outcome:
        """Runs one attempt of the job if it can be claimed; hands it back when cancelled
        from outside (a worker shutting down), re-raising the cancellation."""
        job = await self._store.get(job_id)
        if job is None or job.is_terminal:
            return Done()
        kind = self._kinds.get(job.kind)
        if kind is None:
            _log.error("job of an unknown kind", job_id=job_id, kind=job.kind)
            return Done()
        now = self._clock()
        claim = str(uuid.uuid4())
        stale_before = now - timedelta(seconds=kind.heartbeat_timeout_seconds)
        if not await self._store.claim(job_id, claim, now, stale_before):
            return Done()
        context = _RunContext(self._store, job, claim)
        attempt = job.attempts + 1
        _log.info("job started", job_id=job_id, kind=kind.name, attempt=attempt)
        task = asyncio.create_task(kind.run(context, job.params))
        try:
            stopped = await self._supervise(task, kind, job_id, claim, context)
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            await self._store.requeue(
                job_id,
                claim,
                error_code="HANDED_BACK",
                error_message="The worker stopped; the job went back to the queue.",
                refund_attempt=True,
            )
            _log.info("job handed back", job_id=job_id, kind=kind.name)
            raise
        return await self._conclude(task, stopped, kind, job_id, claim, attempt)

    async def _supervise(
        self,
        task: asyncio.Task[Mapping[str, Any]],
        kind: JobKind,
        job_id: str,
        claim: str,
        context: _RunContext,
    ) -> str | None:
        """Waits for the task with heartbeats; 'cancelled', 'lost' or 'timeout' when stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + kind.timeout_seconds
        while not task.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                await _stop(task)
                return "timeout"
            await asyncio.wait({task}, timeout=min(self._heartbeat_seconds, remaining))
            if task.done():
                break
            cancel = await self._store.heartbeat(job_id, claim, self._clock())
            if cancel is None:
                await _stop(task)
                return "lost"
            if cancel:
                context.cancel_seen = True
                await _stop(task)
                return "cancelled"
        return None

    async def _conclude(
        self,
        task: asyncio.Task[Mapping[str, Any]],
        stopped: str | None,
        kind: JobKind,
        job_id: str,
        claim: str,
        attempt: int,
    ) -> Outcome:
        now = self._clock()
        if stopped == "lost":
            _log.warning("job lost its claim; another run took it over", job_id=job_id)
            return Done()
        error: BaseException | None = None
        if stopped is None and not task.cancelled():
            error = task.exception()
        if stopped == "cancelled" or isinstance(error, JobCancelled):
            await self._store.finish(
                job_id,
                claim,
                JobStatus.CANCELLED,
                now,
                error_code="CANCELLED",
                error_message="Cancelled while running.",
            )
            await kind.clean_up(job_id)
            _log.info("job cancelled", job_id=job_id, kind=kind.name)
            return Done()
        if stopped is None and error is None:
            result = task.result()
            expires_at = now + timedelta(seconds=kind.result_ttl_seconds)
            await self._store.finish(
                job_id, claim, JobStatus.SUCCEEDED, now, result=result, expires_at=expires_at
            )
            _log.info("job succeeded", job_id=job_id, kind=kind.name, attempt=attempt)
            return Done()
        code, message, retryable = _failure(error, stopped, kind)
        if retryable and attempt < kind.max_attempts:
            await self._store.requeue(job_id, claim, error_code=code, error_message=message)
            delay = kind.retry_delay(attempt)
            _log.warning(
                "job attempt failed; retrying",
                job_id=job_id,
                kind=kind.name,
                attempt=attempt,
                code=code,
                delay_seconds=delay,
            )
            return Retry(delay)
        await self._store.finish(
            job_id, claim, JobStatus.FAILED, now, error_code=code, error_message=message
        )
        await kind.clean_up(job_id)
        _log.warning("job failed", job_id=job_id, kind=kind.name, attempt=attempt, code=code)
        return Done()


def _failure(
    error: BaseException | None, stopped: str | None, kind: JobKind
) -> tuple[str, str, bool]:
    if stopped == "timeout":
        return "TIMEOUT", f"The attempt ran longer than {kind.timeout_seconds:g} s.", True
    if isinstance(error, JobFailure):
        return error.code, error.message, error.retryable
    # An unexpected error's text may hold anything: only its type reaches the requester.
    _log.error("job raised", kind=kind.name, exc_info=error)
    return "INTERNAL", f"The job failed unexpectedly ({type(error).__name__}).", True


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
