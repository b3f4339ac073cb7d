"""Job machinery over a real migrated store, with kinds made for the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.services.jobs import (
    EmbeddedDispatcher,
    Job,
    JobContext,
    JobFailure,
    JobKind,
    JobKinds,
    JobRunner,
    JobService,
    JobStore,
)
from dataintel.services.jobs.probe import probe_kind

HEARTBEAT_SECONDS = 0.05
DEADLINE_SECONDS = 20.0


class Gate:
    """Lets a test hold a job's run at a point, and see that it got there."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cleaned: list[str] = []


async def _held(gate: Gate, context: JobContext, params: Mapping[str, Any]) -> Mapping[str, Any]:
    gate.entered.set()
    while not gate.release.is_set():
        await asyncio.sleep(0.01)
        context.raise_if_cancelled()
    await context.report_progress(0.5)
    await context.report_progress(0.25)
    return {"echo": dict(params)}


async def _never_ends(context: JobContext, params: Mapping[str, Any]) -> Mapping[str, Any]:
    await asyncio.sleep(3600)
    return {}


async def _refuses(context: JobContext, params: Mapping[str, Any]) -> Mapping[str, Any]:
    raise JobFailure("BAD_USER_INPUT", "dataset: there is no dataset 'x'.")


def test_kinds(gate: Gate) -> JobKinds:
    """probe, held (waits for the gate), slow (times out) and refuses (fails for good)."""

    async def cleanup(job_id: str) -> None:
        gate.cleaned.append(job_id)

    async def held(context: JobContext, params: Mapping[str, Any]) -> Mapping[str, Any]:
        return await _held(gate, context, params)

    common: dict[str, Any] = {
        "retry_delay_seconds": 0.01,
        "retry_backoff_max_seconds": 0.05,
        "result_ttl_seconds": 3600,
        "heartbeat_timeout_seconds": 1.0,
        "cleanup": cleanup,
    }
    kinds = JobKinds()
    kinds.register(probe_kind(1.0))
    kinds.register(JobKind("held", held, timeout_seconds=30, max_attempts=1, **common))
    kinds.register(JobKind("slow", _never_ends, timeout_seconds=0.3, max_attempts=2, **common))
    kinds.register(JobKind("refuses", _refuses, timeout_seconds=5, max_attempts=3, **common))
    return kinds


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def jobs(store_engine: AsyncEngine, gate: Gate) -> AsyncIterator[JobService]:
    """A job service running its jobs in process, two at a time."""
    store = JobStore(store_engine)
    kinds = test_kinds(gate)
    dispatcher = EmbeddedDispatcher(JobRunner(store, kinds, HEARTBEAT_SECONDS), concurrency=2)
    try:
        yield JobService(store, kinds, dispatcher)
    finally:
        gate.release.set()
        await dispatcher.aclose()


async def settled(service: JobService, job_id: str, *statuses: str) -> Job:
    """The job once its status is one of these (by default any terminal one)."""
    deadline = datetime.now(UTC) + timedelta(seconds=DEADLINE_SECONDS)
    while True:
        job = await service.get(job_id)
        assert job is not None
        if (job.status in statuses) if statuses else job.is_terminal:
            return job
        assert datetime.now(UTC) < deadline, f"job stuck at {job.status}"
        await asyncio.sleep(0.02)
