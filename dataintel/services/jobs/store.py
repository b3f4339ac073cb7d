"""The jobs table: every state change is one conditional UPDATE, so racing processes agree.

A run holds a job by its claim (a random id written when it starts); its heartbeats,
progress and outcome only land while it still holds the claim. A run whose worker was
declared lost (stale heartbeat) can therefore not overwrite what its successor writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dataintel.services.jobs.records import Job, JobFilter, JobStatus
from dataintel.services.pagination import (
    Page,
    PageRequest,
    keyset_conditions,
    keyset_order,
    page_from_rows,
)
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, fetch_all, fetch_scalar
from dataintel.store.rows import AnyRow

_JOBS = tables.jobs
_MESSAGE_LIMIT = 2000


def job_from_row(row: AnyRow) -> Job:
    """The record of one jobs row."""
    return Job(
        id=row.id,
        kind=row.kind,
        status=JobStatus(row.status),
        requested_by=row.requested_by,
        params=row.params or {},
        progress=float(row.progress),
        attempts=int(row.attempts),
        max_attempts=int(row.max_attempts),
        error_code=row.error_code,
        error_message=row.error_message,
        result=row.result,
        idempotency_key=row.idempotency_key,
        cancel_requested=bool(row.cancel_requested),
        created_at=row.created_at,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
    )


def _filter_conditions(found: JobFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if found.requested_by is not None:
        conditions.append(_JOBS.c.requested_by == found.requested_by)
    if found.statuses:
        conditions.append(_JOBS.c.status.in_([status.value for status in found.statuses]))
    if found.kinds:
        conditions.append(_JOBS.c.kind.in_(found.kinds))
    return conditions


class JobStore:
    """Reads and conditional writes of the jobs table."""

    def __init__(self, engine: StoreEngine) -> None:
        self._engine = engine

    async def insert(
        self,
        *,
        kind: str,
        params: Mapping[str, Any],
        requested_by: str,
        max_attempts: int,
        idempotency_key: str | None,
        request_id: str | None,
        now: datetime,
    ) -> tuple[Job, bool]:
        """Adds a QUEUED job; with a key the requester used before, returns that job instead.

        The second value is True when the job is new.
        """
        job_id = str(uuid.uuid4())
        values = {
            "id": job_id,
            "kind": kind,
            "status": JobStatus.QUEUED.value,
            "requested_by": requested_by,
            "params": dict(params),
            "progress": 0.0,
            "attempts": 0,
            "max_attempts": max_attempts,
            "idempotency_key": idempotency_key,
            "cancel_requested": False,
            "request_id": request_id,
            "created_at": now,
        }
        try:
            async with self._engine.begin() as connection:
                await connection.execute(sa.insert(_JOBS).values(**values))
        except sa.exc.IntegrityError:
            if idempotency_key is None:
                raise
            existing = await self.by_idempotency_key(requested_by, idempotency_key)
            if existing is None:
                raise
            return existing, False
        created = await self.get(job_id)
        assert created is not None
        return created, True

    async def by_idempotency_key(self, requested_by: str, key: str) -> Job | None:
        """The requester's job enqueued with this key, if any."""
        rows = await fetch_all(
            self._engine,
            sa.select(_JOBS).where(
                _JOBS.c.requested_by == requested_by, _JOBS.c.idempotency_key == key
            ),
        )
        return job_from_row(rows[0]) if rows else None

    async def get(self, job_id: str) -> Job | None:
        """The job with this id, if any."""
        rows = await fetch_all(self._engine, sa.select(_JOBS).where(_JOBS.c.id == job_id))
        return job_from_row(rows[0]) if rows else None

    async def page(self, found: JobFilter, page: PageRequest) -> Page[Job]:
        """Jobs matching the filter, newest first."""
        key = [_JOBS.c.created_at, _JOBS.c.id]
        statement = (
            sa.select(_JOBS)
            .where(*_filter_conditions(found), *keyset_conditions(key, True, page))
            .order_by(*keyset_order(key, True, page))
            .limit(page.limit)
        )
        rows = await fetch_all(self._engine, statement)
        return page_from_rows([job_from_row(row) for row in rows], page)

    async def count(self, found: JobFilter) -> int:
        """How many jobs match the filter."""
        statement = sa.select(sa.func.count()).select_from(_JOBS).where(*_filter_conditions(found))
        return int(await fetch_scalar(self._engine, statement))

    async def _update(self, conditions: Sequence[sa.ColumnElement[bool]], **values: Any) -> bool:
        async with self._engine.begin() as connection:
            result = await connection.execute(sa.update(_JOBS).where(*conditions).values(**values))
        return bool(result.rowcount == 1)

    async def claim(self, job_id: str, claim: str, now: datetime, stale_before: datetime) -> bool:
        """Starts an attempt of a QUEUED job (or of a RUNNING one whose worker went silent)."""
        return await self._update(
            [
                _JOBS.c.id == job_id,
                _JOBS.c.cancel_requested.is_(False),
                sa.or_(
                    _JOBS.c.status == JobStatus.QUEUED.value,
                    sa.and_(
                        _JOBS.c.status == JobStatus.RUNNING.value,
                        _JOBS.c.heartbeat_at < stale_before,
                    ),
                ),
            ],
            status=JobStatus.RUNNING.value,
            claim=claim,
            attempts=_JOBS.c.attempts + 1,
            started_at=now,
            heartbeat_at=now,
        )

    async def heartbeat(self, job_id: str, claim: str, now: datetime) -> bool | None:
        """Records that the run is alive; its answer: whether a cancel was asked (None: the run
        lost its claim and must stop)."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                sa.update(_JOBS)
                .where(
                    _JOBS.c.id == job_id,
                    _JOBS.c.claim == claim,
                    _JOBS.c.status == JobStatus.RUNNING.value,
                )
                .values(heartbeat_at=now)
                .returning(_JOBS.c.cancel_requested)
            )
            row = result.first()
        return None if row is None else bool(row[0])

    async def progress(self, job_id: str, claim: str, fraction: float) -> None:
        """Raises the job's progress to ``fraction`` (never lowers it)."""
        await self._update(
            [_JOBS.c.id == job_id, _JOBS.c.claim == claim, _JOBS.c.progress < fraction],
            progress=fraction,
        )

    async def finish(
        self,
        job_id: str,
        claim: str,
        status: JobStatus,
        now: datetime,
        *,
        result: Mapping[str, Any] | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        expires_at: datetime | None = None,
    ) -> bool:
        """Ends the run's attempt in a terminal state, if the run still holds the job."""
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": now,
            "result": dict(result) if result is not None else None,
            "error_code": error_code,
            "error_message": error_message[:_MESSAGE_LIMIT] if error_message else None,
            "expires_at": expires_at,
            "claim": None,
        }
        if status is JobStatus.SUCCEEDED:
            values["progress"] = 1.0
        return await self._update(
            [
                _JOBS.c.id == job_id,
                _JOBS.c.claim == claim,
                _JOBS.c.status == JobStatus.RUNNING.value,
            ],
            **values,
        )

    async def requeue(
        self,
        job_id: str,
        claim: str,
        *,
        error_code: str | None,
        error_message: str | None,
        refund_attempt: bool = False,
    ) -> bool:
        """Puts the run's job back in the queue (a retry, or handed back at shutdown)."""
        values: dict[str, Any] = {
            "status": JobStatus.QUEUED.value,
            "claim": None,
            "error_code": error_code,
            "error_message": error_message[:_MESSAGE_LIMIT] if error_message else None,
        }
        if refund_attempt:
            values["attempts"] = _JOBS.c.attempts - 1
        return await self._update(
            [
                _JOBS.c.id == job_id,
                _JOBS.c.claim == claim,
                _JOBS.c.status == JobStatus.RUNNING.value,
            ],
            **values,
        )

    async def cancel_queued(self, job_id: str, now: datetime) -> bool:
        """CANCELLED at once when the job has not started."""
        return await self._update(
            [_JOBS.c.id == job_id, _JOBS.c.status == JobStatus.QUEUED.value],
            status=JobStatus.CANCELLED.value,
            cancel_requested=True,
            finished_at=now,
            error_code="CANCELLED",
            error_message="Cancelled before it started.",
        )

    async def request_cancel(self, job_id: str) -> bool:
        """Asks a RUNNING job to stop; its run sees it with its next heartbeat."""
        return await self._update(
            [_JOBS.c.id == job_id, _JOBS.c.status == JobStatus.RUNNING.value],
            cancel_requested=True,
        )

    async def silent(self, before: datetime) -> list[tuple[Job, str | None]]:
        """RUNNING jobs whose last heartbeat is older than ``before``, with their claims."""
        rows = await fetch_all(
            self._engine,
            sa.select(_JOBS).where(
                _JOBS.c.status == JobStatus.RUNNING.value, _JOBS.c.heartbeat_at < before
            ),
        )
        return [(job_from_row(row), row.claim) for row in rows]

    async def queued_ids(self) -> list[str]:
        """Ids of the QUEUED jobs, oldest first."""
        rows = await fetch_all(
            self._engine,
            sa.select(_JOBS.c.id)
            .where(_JOBS.c.status == JobStatus.QUEUED.value)
            .order_by(_JOBS.c.created_at),
        )
        return [row.id for row in rows]

    async def expire(self, now: datetime) -> list[Job]:
        """Marks SUCCEEDED jobs past their expiry EXPIRED; returns them."""
        rows = await fetch_all(
            self._engine,
            sa.select(_JOBS).where(
                _JOBS.c.status == JobStatus.SUCCEEDED.value, _JOBS.c.expires_at < now
            ),
        )
        expired: list[Job] = []
        for row in rows:
            if await self._update(
                [_JOBS.c.id == row.id, _JOBS.c.status == JobStatus.SUCCEEDED.value],
                status=JobStatus.EXPIRED.value,
            ):
                expired.append(job_from_row(row))
        return expired
