"""How a job reaches a runner: SAQ on Redis (a worker process), or the serving process itself.

Both deliver a job id, now or after a delay; the runner claims it in the store, so a job
delivered twice (a retry racing a sweep) still runs once at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from saq import Job as SaqJob
from saq.queue import Queue

from dataintel.observability.logging import get_logger
from dataintel.services.jobs.kinds import JobKinds
from dataintel.services.jobs.runner import JobRunner, Retry

_log = get_logger("dataintel.jobs")

RUN_JOB_FUNCTION = "dataintel.run_job"
"""The one SAQ function: it takes ``job_id`` and runs the job's kind."""

_QUEUE_TIMEOUT_MARGIN_SECONDS = 60
"""SAQ's own timeout only backs up the runner's (which fails the attempt as TIMEOUT)."""


class JobDispatcher(Protocol):
    """Delivers job ids to a runner."""

    async def dispatch(self, job_id: str, delay_seconds: float = 0) -> None:
        """Delivers the job after ``delay_seconds``; DEPENDENCY_UNAVAILABLE-like errors raise."""
        ...

    async def aclose(self) -> None:
        """Stops delivering; running embedded jobs are handed back."""
        ...


class SaqDispatcher:
    """Enqueues SAQ jobs that a ``dataintel worker`` process runs."""

    def __init__(self, queue: Queue, kinds: JobKinds, result_ttl_seconds: int = 3600) -> None:
        self.queue = queue
        self._ttl = result_ttl_seconds
        longest = max((kind.timeout_seconds for kind in kinds), default=0.0)
        self._timeout = int(longest) + _QUEUE_TIMEOUT_MARGIN_SECONDS

    async def dispatch(self, job_id: str, delay_seconds: float = 0) -> None:
        """Enqueues one delivery; each has its own SAQ key (the store dedupes runs)."""
        # SAQ's defaults (10 s timeout, one attempt, 10-minute TTL) are set explicitly here:
        # retries are decided by the runner from the store, so SAQ makes one attempt.
        delivery = SaqJob(
            function=RUN_JOB_FUNCTION,
            kwargs={"job_id": job_id},
            key=f"{job_id}:{uuid.uuid4().hex[:12]}",
            timeout=self._timeout,
            retries=1,
            ttl=self._ttl,
            scheduled=int(time.time() + delay_seconds) if delay_seconds > 0 else 0,
        )
        try:
            await self.queue.enqueue(delivery)
        except RedisConnectionError:
            # A pooled connection that died with a Redis restart fails once; the same key
            # makes a second try safe (SAQ keeps one job per key).
            _log.info("job queue connection was dead; enqueuing again", job_id=job_id)
            await self.queue.enqueue(delivery)

    async def aclose(self) -> None:
        """Closes the queue's Redis connections (quietly when Redis is already gone)."""
        try:
            await self.queue.disconnect()
        except Exception as failure:
            _log.warning("job queue did not close cleanly", error=type(failure).__name__)


def saq_function(runner: JobRunner, dispatcher: SaqDispatcher) -> Callable[..., Awaitable[None]]:
    """The SAQ function a worker registers: runs one attempt, enqueues the retry if any."""

    async def run_job(_ctx: dict[str, Any], *, job_id: str) -> None:
        try:
            outcome = await runner.run(job_id)
        except asyncio.CancelledError:
            # Handed back (the worker is stopping): deliver it again for another worker.
            with contextlib.suppress(Exception):
                await dispatcher.dispatch(job_id)
            raise
        if isinstance(outcome, Retry):
            await dispatcher.dispatch(job_id, outcome.delay_seconds)

    return run_job


class EmbeddedDispatcher:
    """Runs jobs in the serving process on a bounded pool (no Redis; lost on restart)."""

    def __init__(self, runner: JobRunner, concurrency: int) -> None:
        self._runner = runner
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def dispatch(self, job_id: str, delay_seconds: float = 0) -> None:
        """Starts the job (after its delay) on the pool; returns at once."""
        if self._closed:
            return
        task = asyncio.create_task(self._deliver(job_id, delay_seconds), name=f"job {job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, job_id: str, delay_seconds: float) -> None:
        while True:
            if delay_seconds > 0:
                await asyncio.sleep(delay_seconds)
            async with self._slots:
                try:
                    outcome = await self._runner.run(job_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    _log.exception("embedded job delivery failed", job_id=job_id)
                    return
            if not isinstance(outcome, Retry):
                return
            delay_seconds = outcome.delay_seconds

    async def aclose(self) -> None:
        """Cancels every delivery: running jobs go back to QUEUED (see docs/jobs.md)."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
