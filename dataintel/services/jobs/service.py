"""The job service: enqueue, read, list and cancel jobs, and keep the table honest.

``JobService`` is what the API (and other services, such as GDPR requests) use; its
``maintain`` pass, run by every worker and serving process, fails or retries jobs whose
worker died (stale heartbeat), expires finished jobs past their result TTL and deletes
their files.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from dataintel.errors import BadUserInputError, DependencyUnavailableError, NotFoundError
from dataintel.observability.logging import get_logger
from dataintel.services.jobs.dispatch import JobDispatcher
from dataintel.services.jobs.kinds import JobKinds
from dataintel.services.jobs.records import Job, JobFilter, JobStatus
from dataintel.services.jobs.store import JobStore
from dataintel.services.pagination import Page, PageRequest

_log = get_logger("dataintel.jobs")
_DOMAIN = "jobs"
_IDEMPOTENCY_KEY_LIMIT = 200


class JobService:
    """Jobs over the store (their record of truth) and a dispatcher (how they get run)."""

    def __init__(
        self,
        store: JobStore,
        kinds: JobKinds,
        dispatcher: JobDispatcher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.kinds = kinds
        self.dispatcher = dispatcher
        self._clock = clock

    async def enqueue(
        self,
        kind: str,
        params: Mapping[str, Any],
        actor: str,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> Job:
        """Records a QUEUED job and delivers it; answers at once.

        The same ``idempotency_key`` from the same actor returns the job made the first time
        (BAD_USER_INPUT if its parameters differ).
        """
        found = self.kinds.get(kind)
        if found is None:
            raise BadUserInputError(
                f"There is no job kind '{kind}'.", domain=_DOMAIN, details={"field": "kind"}
            )
        if idempotency_key is not None and not 0 < len(idempotency_key) <= _IDEMPOTENCY_KEY_LIMIT:
            raise BadUserInputError(
                f"idempotencyKey must be 1 to {_IDEMPOTENCY_KEY_LIMIT} characters.",
                domain=_DOMAIN,
                details={"field": "idempotencyKey"},
            )
        # Parameters go through JSON now, so a job never fails later on what it was given.
        plain: dict[str, Any] = orjson.loads(orjson.dumps(dict(params)))
        job, created = await self.store.insert(
            kind=kind,
            params=plain,
            requested_by=actor,
            max_attempts=found.max_attempts,
            idempotency_key=idempotency_key,
            request_id=request_id,
            now=self._clock(),
        )
        if not created:
            if job.kind != kind or dict(job.params) != plain:
                raise BadUserInputError(
                    "This idempotencyKey was used for another request; use a new key.",
                    domain=_DOMAIN,
                    details={"field": "idempotencyKey"},
                )
            return job
        try:
            await self.dispatcher.dispatch(job.id)
        except Exception as failure:
            _log.error("job could not be queued", job_id=job.id, error=type(failure).__name__)
            await self.store.cancel_queued(job.id, self._clock())
            raise DependencyUnavailableError(
                "The job queue is unavailable; try again.", domain=_DOMAIN
            ) from None
        return job

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, if any."""
        return await self.store.get(job_id)

    async def require(self, job_id: str) -> Job:
        """The job with this id; NOT_FOUND otherwise."""
        job = await self.store.get(job_id)
        if job is None:
            raise NotFoundError(
                f"There is no job '{job_id}'.", domain=_DOMAIN, details={"field": "id"}
            )
        return job

    async def list(self, found: JobFilter, page: PageRequest) -> Page[Job]:
        """A page of jobs matching the filter, newest first."""
        return await self.store.page(found, page)

    async def count(self, found: JobFilter) -> int:
        """How many jobs match the filter."""
        return await self.store.count(found)

    async def cancel(self, job_id: str) -> Job:
        """Cancels a QUEUED job at once, asks a RUNNING one to stop; a finished job is left as
        it is. Returns the job as it then stands."""
        job = await self.require(job_id)
        if job.is_terminal:
            return job
        if await self.store.cancel_queued(job_id, self._clock()):
            # No run will see the cancellation: the kind's cleanup runs here (a subject
            # request whose job never started must leave VERIFIED, docs/gdpr.md).
            kind = self.kinds.get(job.kind)
            if kind is not None:
                await kind.clean_up(job_id)
        else:
            await self.store.request_cancel(job_id)
        return await self.require(job_id)

    async def recover_queued(self) -> int:
        """Delivers every QUEUED job again (the embedded pool at startup); returns how many."""
        ids = await self.store.queued_ids()
        for job_id in ids:
            await self.dispatcher.dispatch(job_id)
        return len(ids)

    async def maintain(self) -> None:
        """One pass: retries or fails jobs whose worker went silent, expires old results."""
        now = self._clock()
        shortest = min((kind.heartbeat_timeout_seconds for kind in self.kinds), default=None)
        if shortest is not None:
            for job, claim in await self.store.silent(now - timedelta(seconds=shortest)):
                await self._recover_silent(job, claim, now)
        for job in await self.store.expire(now):
            kind = self.kinds.get(job.kind)
            if kind is not None:
                await kind.clean_up(job.id)
            _log.info("job expired", job_id=job.id, kind=job.kind)

    async def _recover_silent(self, job: Job, claim: str | None, now: datetime) -> None:
        kind = self.kinds.get(job.kind)
        if kind is None or claim is None or job.heartbeat_at is None:
            return
        if job.heartbeat_at >= now - timedelta(seconds=kind.heartbeat_timeout_seconds):
            return
        message = (
            f"The worker running attempt {job.attempts} stopped sending heartbeats"
            f" for {kind.heartbeat_timeout_seconds:g} s."
        )
        if job.attempts < kind.max_attempts and not job.cancel_requested:
            if await self.store.requeue(
                job.id, claim, error_code="WORKER_LOST", error_message=message
            ):
                _log.warning("job lost its worker; retrying", job_id=job.id, kind=job.kind)
                await self.dispatcher.dispatch(job.id, kind.retry_delay(job.attempts))
            return
        status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.FAILED
        if await self.store.finish(
            job.id, claim, status, now, error_code="WORKER_LOST", error_message=message
        ):
            _log.warning("job lost its worker; failed", job_id=job.id, kind=job.kind)
            if kind.cleanup is not None:
                with contextlib.suppress(Exception):
                    await kind.cleanup(job.id)


class JobMaintenance:
    """Runs ``JobService.maintain`` every few seconds in the background of a process."""

    def __init__(self, service: JobService, every_seconds: float) -> None:
        self._service = service
        self._every = every_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the loop (not at all when its interval is 0)."""
        if self._every <= 0:
            return
        self._task = asyncio.create_task(self._loop(), name="job maintenance")

    async def _loop(self) -> None:
        while True:
            try:
                await self._service.maintain()
            except Exception:
                _log.exception("job maintenance failed")
            await asyncio.sleep(self._every)

    async def aclose(self) -> None:
        """Stops the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
