"""The job lifecycle in the embedded pool, on SQLite and PostgreSQL: the same runner a worker
uses, so states, retries, timeouts, cancels and lost workers behave the same."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from dataintel.errors import BadUserInputError
from dataintel.services.jobs import JobFilter, JobService, JobStatus
from dataintel.services.pagination import PageRequest
from tests.services.jobs.conftest import Gate, settled


async def test_a_job_goes_from_queued_to_succeeded_with_its_result(
    jobs: JobService, gate: Gate
) -> None:
    job = await jobs.enqueue("held", {"n": 1}, "user:1")
    assert job.status is JobStatus.QUEUED
    assert job.attempts == 0
    await asyncio.wait_for(gate.entered.wait(), 10)
    running = await settled(jobs, job.id, JobStatus.RUNNING)
    assert running.started_at is not None
    assert running.heartbeat_at is not None
    gate.release.set()
    done = await settled(jobs, job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.result == {"echo": {"n": 1}}
    assert done.progress == 1.0
    assert done.attempts == 1
    assert done.finished_at is not None
    assert done.expires_at is not None
    assert done.expires_at - done.finished_at == timedelta(seconds=3600)


async def test_progress_only_grows(jobs: JobService, gate: Gate) -> None:
    job = await jobs.enqueue("held", {}, "user:1")
    await asyncio.wait_for(gate.entered.wait(), 10)
    gate.release.set()
    done = await settled(jobs, job.id)
    # The run reported 0.5 then 0.25: 0.25 was ignored; success sets 1.0.
    assert done.progress == 1.0


async def test_retryable_failures_are_retried_until_an_attempt_succeeds(
    jobs: JobService,
) -> None:
    job = await jobs.enqueue("probe", {"failures": 2, "steps": 1}, "user:1")
    done = await settled(jobs, job.id)
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 3
    assert done.result == {"seconds": 0.0, "attempt": 3}


async def test_a_job_fails_after_its_last_attempt_with_the_last_error(jobs: JobService) -> None:
    job = await jobs.enqueue("probe", {"failures": 5, "steps": 1}, "user:1")
    done = await settled(jobs, job.id)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 3
    assert done.error_code == "PROBE_FAILURE"
    assert done.error_message == "Attempt 3 fails on purpose."


async def test_a_failure_that_is_not_retryable_fails_at_once_and_cleans_up(
    jobs: JobService, gate: Gate
) -> None:
    job = await jobs.enqueue("refuses", {}, "user:1")
    done = await settled(jobs, job.id)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 1
    assert done.error_code == "BAD_USER_INPUT"
    assert gate.cleaned == [job.id]


async def test_an_attempt_longer_than_its_kinds_timeout_fails_with_timeout(
    jobs: JobService,
) -> None:
    job = await jobs.enqueue("slow", {}, "user:1")
    done = await settled(jobs, job.id)
    assert done.status is JobStatus.FAILED
    assert done.attempts == 2
    assert done.error_code == "TIMEOUT"


async def test_cancelling_a_queued_job_cancels_it_before_it_runs_and_cleans_up(
    jobs: JobService, gate: Gate
) -> None:
    # Two slots: two held jobs fill them, the third waits in the queue.
    first = await jobs.enqueue("held", {"n": 1}, "user:1")
    second = await jobs.enqueue("held", {"n": 2}, "user:1")
    await settled(jobs, first.id, JobStatus.RUNNING)
    await settled(jobs, second.id, JobStatus.RUNNING)
    waiting = await jobs.enqueue("refuses", {}, "user:1")
    cancelled = await jobs.cancel(waiting.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.attempts == 0
    # No run will see it: the kind's cleanup ran at the cancel (a subject request leaves
    # VERIFIED through it).
    assert gate.cleaned == [waiting.id]
    gate.release.set()
    await settled(jobs, first.id)
    assert (await settled(jobs, waiting.id)).attempts == 0


async def test_cancelling_a_running_job_stops_it_and_cleans_up(
    jobs: JobService, gate: Gate
) -> None:
    job = await jobs.enqueue("held", {}, "user:1")
    await asyncio.wait_for(gate.entered.wait(), 10)
    asked = await jobs.cancel(job.id)
    assert asked.cancel_requested
    done = await settled(jobs, job.id)
    assert done.status is JobStatus.CANCELLED
    assert done.error_code == "CANCELLED"
    assert gate.cleaned == [job.id]


async def test_cancelling_a_finished_job_leaves_it(jobs: JobService) -> None:
    job = await jobs.enqueue("probe", {"steps": 1}, "user:1")
    await settled(jobs, job.id)
    assert (await jobs.cancel(job.id)).status is JobStatus.SUCCEEDED


async def test_an_idempotency_key_returns_the_same_job(jobs: JobService) -> None:
    first = await jobs.enqueue("probe", {"steps": 1}, "user:1", idempotency_key="k-1")
    again = await jobs.enqueue("probe", {"steps": 1}, "user:1", idempotency_key="k-1")
    assert again.id == first.id
    # The key is the requester's own: another requester's same key is another job.
    other = await jobs.enqueue("probe", {"steps": 1}, "user:2", idempotency_key="k-1")
    assert other.id != first.id
    with pytest.raises(BadUserInputError, match="idempotencyKey"):
        await jobs.enqueue("probe", {"steps": 2}, "user:1", idempotency_key="k-1")
    await settled(jobs, first.id)
    await settled(jobs, other.id)
    mine = await jobs.list(JobFilter(requested_by="user:1"), PageRequest(first=10))
    assert [job.id for job in mine.items] == [first.id]


async def test_an_unknown_kind_is_bad_user_input(jobs: JobService) -> None:
    with pytest.raises(BadUserInputError, match="no job kind 'nope'"):
        await jobs.enqueue("nope", {}, "user:1")


class Undelivered:
    """A dispatcher that only records what it was asked to deliver."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, float]] = []

    async def dispatch(self, job_id: str, delay_seconds: float = 0) -> None:
        self.delivered.append((job_id, delay_seconds))

    async def aclose(self) -> None:
        pass


async def _started_and_died(service: JobService, kind: str) -> str:
    """A job whose run claimed it five seconds ago, then died without a heartbeat."""
    job = await service.enqueue(kind, {"steps": 1}, "user:1")
    moment = datetime.now(UTC) - timedelta(seconds=5)
    assert await service.store.claim(job.id, "dead-run", moment, stale_before=moment)
    return job.id


async def test_a_silent_job_with_attempts_left_is_queued_again(jobs: JobService) -> None:
    dispatcher = Undelivered()
    service = JobService(jobs.store, jobs.kinds, dispatcher)
    job_id = await _started_and_died(service, "probe")
    await service.maintain()
    again = await service.get(job_id)
    assert again is not None
    assert again.status is JobStatus.QUEUED
    assert again.attempts == 1
    assert again.error_code == "WORKER_LOST"
    assert [delivered for delivered, _ in dispatcher.delivered] == [job_id, job_id]
    # The dead run's claim is gone: whatever it might still write is refused.
    assert not await service.store.finish(
        job_id, "dead-run", JobStatus.SUCCEEDED, datetime.now(UTC)
    )


async def test_a_silent_job_on_its_last_attempt_fails_with_worker_lost(
    jobs: JobService, gate: Gate
) -> None:
    service = JobService(jobs.store, jobs.kinds, Undelivered())
    job_id = await _started_and_died(service, "held")
    await service.maintain()
    failed = await service.get(job_id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error_code == "WORKER_LOST"
    assert gate.cleaned == [job_id]


async def test_a_job_with_a_fresh_heartbeat_is_left_running(jobs: JobService) -> None:
    service = JobService(jobs.store, jobs.kinds, Undelivered())
    job = await service.enqueue("probe", {}, "user:1")
    now = datetime.now(UTC)
    assert await service.store.claim(job.id, "live-run", now, stale_before=now)
    await service.maintain()
    running = await service.get(job.id)
    assert running is not None
    assert running.status is JobStatus.RUNNING
