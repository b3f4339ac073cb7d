"""Jobs through SAQ on a real redis-server, run by real ``dataintel worker`` processes."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.services.export import ExportRequest
from dataintel.services.jobs import Job, JobService, JobStatus
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.worker import WorkerProcess

pytestmark = pytest.mark.redis

DEADLINE_SECONDS = 60.0
JOB_SETTINGS: dict[str, Any] = {
    "jobs_heartbeat_seconds": 0.2,
    "jobs_heartbeat_timeout_seconds": 2.0,
    "jobs_sweep_seconds": 1,
    "jobs_shutdown_grace_seconds": 0,
}


@pytest.fixture
def job_settings(make_settings: SettingsFactory, redis_url: str, tmp_path: Path) -> dict[str, Any]:
    return {**JOB_SETTINGS, "redis_url": redis_url, "export_dir": tmp_path / "exports"}


@pytest.fixture
async def app(
    make_settings: SettingsFactory, job_settings: dict[str, Any]
) -> AsyncIterator[Starlette]:
    application = create_app(make_settings(**job_settings))
    async with serving(application):
        yield application


@pytest.fixture
def jobs(app: Starlette) -> JobService:
    service: JobService = app.state.runtime.services.jobs
    return service


@pytest.fixture
def new_worker(app: Starlette, worker_processes: list[WorkerProcess], tmp_path: Path) -> Any:
    settings = app.state.settings
    environment = {
        "DATAINTEL_DATABASE_URL": settings.store.database_url,
        "DATAINTEL_REDIS_URL": settings.redis.url,
        "DATAINTEL_EXPORT_DIR": str(settings.export.dir),
        "DATAINTEL_JWT_SECRET": settings.auth.jwt_secret.get_secret_value(),
        "DATAINTEL_LOG_FORMAT": "json",
        "DATAINTEL_JOBS_HEARTBEAT_SECONDS": "0.2",
        "DATAINTEL_JOBS_HEARTBEAT_TIMEOUT_SECONDS": "2",
        "DATAINTEL_JOBS_SWEEP_SECONDS": "1",
        "DATAINTEL_JOBS_SHUTDOWN_GRACE_SECONDS": "0",
    }

    def start(**overrides: str) -> WorkerProcess:
        worker = WorkerProcess(
            {**environment, **overrides}, tmp_path / f"worker-{len(worker_processes)}.log"
        )
        worker_processes.append(worker)
        worker.start()
        return worker

    return start


async def until(
    jobs: JobService, job_id: str, check: Any, worker: WorkerProcess | None = None
) -> Job:
    """The job once ``check(job)`` holds; fails with the worker's log after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        job = await jobs.get(job_id)
        assert job is not None
        if check(job):
            return job
        if time.monotonic() > deadline:
            log = worker.log() if worker else ""
            pytest.fail(f"job stuck at {job}\n{log}")
        await asyncio.sleep(0.05)


def terminal(job: Job) -> bool:
    return job.is_terminal


async def test_a_worker_runs_a_job_to_success(jobs: JobService, new_worker: Any) -> None:
    worker = new_worker()
    job = await jobs.enqueue("probe", {"seconds": 0.4, "steps": 4}, "user:1")
    done = await until(jobs, job.id, terminal, worker)
    assert done.status is JobStatus.SUCCEEDED, worker.log()
    assert done.result == {"seconds": 0.4, "attempt": 1}
    assert done.progress == 1.0
    assert done.attempts == 1


async def test_a_worker_retries_a_failed_attempt(jobs: JobService, new_worker: Any) -> None:
    worker = new_worker()
    job = await jobs.enqueue("probe", {"failures": 1, "steps": 1}, "user:1")
    done = await until(jobs, job.id, terminal, worker)
    assert done.status is JobStatus.SUCCEEDED, worker.log()
    assert done.attempts == 2


async def test_a_job_queued_without_a_worker_waits_and_can_be_cancelled(
    jobs: JobService, new_worker: Any
) -> None:
    kept = await jobs.enqueue("probe", {"steps": 1}, "user:1")
    dropped = await jobs.enqueue("probe", {"steps": 1}, "user:1")
    assert (await jobs.cancel(dropped.id)).status is JobStatus.CANCELLED
    worker = new_worker()
    assert (await until(jobs, kept.id, terminal, worker)).status is JobStatus.SUCCEEDED
    after = await jobs.get(dropped.id)
    assert after is not None
    assert after.status is JobStatus.CANCELLED
    assert after.attempts == 0


async def test_cancelling_a_running_job_stops_it_in_the_worker(
    jobs: JobService, new_worker: Any
) -> None:
    worker = new_worker()
    job = await jobs.enqueue("probe", {"seconds": 60, "steps": 600}, "user:1")
    await until(jobs, job.id, lambda found: found.progress > 0, worker)
    await jobs.cancel(job.id)
    done = await until(jobs, job.id, terminal, worker)
    assert done.status is JobStatus.CANCELLED
    assert done.progress < 1.0


async def test_a_killed_worker_is_detected_and_its_job_retried_elsewhere(
    jobs: JobService, new_worker: Any
) -> None:
    doomed = new_worker()
    job = await jobs.enqueue("probe", {"seconds": 4, "steps": 40}, "user:1")
    await until(jobs, job.id, lambda found: found.progress > 0, doomed)
    doomed.signal(signal.SIGKILL)
    assert doomed.wait() == -signal.SIGKILL
    killed_at = await jobs.get(job.id)
    assert killed_at is not None
    assert killed_at.status is JobStatus.RUNNING
    survivor = new_worker()
    done = await until(jobs, job.id, terminal, survivor)
    assert done.status is JobStatus.SUCCEEDED, survivor.log()
    assert done.attempts == 2


async def test_sigterm_hands_a_running_job_back_and_another_worker_finishes_it(
    jobs: JobService, new_worker: Any
) -> None:
    first = new_worker()
    job = await jobs.enqueue("probe", {"seconds": 30, "steps": 300}, "user:1")
    await until(jobs, job.id, lambda found: found.progress > 0, first)
    first.signal(signal.SIGTERM)
    assert first.wait() == 0, first.log()
    handed = await jobs.get(job.id)
    assert handed is not None
    assert handed.status is JobStatus.QUEUED
    assert handed.error_code == "HANDED_BACK"
    # The interrupted attempt is not held against the job.
    assert handed.attempts == 0
    second = new_worker()
    await until(jobs, job.id, lambda found: found.status is JobStatus.RUNNING, second)
    await jobs.cancel(job.id)
    assert (await until(jobs, job.id, terminal, second)).status is JobStatus.CANCELLED


async def test_sigterm_lets_a_short_job_finish_within_the_grace_period(
    jobs: JobService, new_worker: Any
) -> None:
    worker = new_worker(DATAINTEL_JOBS_SHUTDOWN_GRACE_SECONDS="30")
    job = await jobs.enqueue("probe", {"seconds": 1.5, "steps": 15}, "user:1")
    await until(jobs, job.id, lambda found: found.progress > 0, worker)
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.log()
    done = await jobs.get(job.id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.attempts == 1


async def test_a_worker_runs_an_export_that_the_server_then_serves(
    app: Starlette, jobs: JobService, new_worker: Any
) -> None:
    worker = new_worker()
    request = ExportRequest("ledger", "NDJSON", "NONE", part_rows=20_000)
    job = await jobs.enqueue("export", request.to_params(), "user:1")
    done = await until(jobs, job.id, terminal, worker)
    assert done.status is JobStatus.SUCCEEDED, worker.log()
    assert done.result is not None
    (part,) = done.result["parts"]
    url = app.state.runtime.services.downloads.sign(job.id, 1).url
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == part["sha256"]
    assert response.content.count(b"\n") == done.result["rows"] == part["rows"]
