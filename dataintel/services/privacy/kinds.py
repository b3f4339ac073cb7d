"""The job kinds of subject requests: ``gdpr.access`` and ``gdpr.erasure``.

Both may run again safely (the access package is rewritten, an erasure changes only what
is not erased yet), so a lost worker or a failed attempt is retried. When the job system
gives up (or the job is cancelled), the cleanup deletes a half-written package and marks the
request FAILED; a request is never left IN_PROGRESS by a job that ended.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from dataintel.observability.logging import get_logger
from dataintel.services.jobs import JobKind, JobRun
from dataintel.services.privacy.dispatch import ACCESS_KIND, ERASURE_KIND
from dataintel.services.privacy.privacy_map import load_privacy_map
from dataintel.services.privacy.requests import RequestLimits, SqlSubjectRequestService
from dataintel.services.privacy.work import PrivacyWork, ReplicaInvalidator
from dataintel.settings import PrivacySettings
from dataintel.store import tables

if TYPE_CHECKING:
    from dataintel.services.job_kinds import JobResources

_log = get_logger("dataintel.privacy")
_MAX_ATTEMPTS = 3
_RETRY_DELAY_SECONDS = 5.0
_RETRY_BACKOFF_MAX_SECONDS = 120.0


def request_limits(privacy: PrivacySettings) -> RequestLimits:
    """Deadlines and input limits of subject requests, from the settings."""
    return RequestLimits(
        due_months=privacy.subject_request_due_months,
        max_extension_months=privacy.subject_request_max_extension_months,
        reason_max_length=privacy.subject_request_reason_max_length,
    )


def subject_request_kinds(resources: JobResources) -> tuple[JobKind, JobKind]:
    """The access and erasure kinds over the process's store, cache and artifact storage."""
    privacy = resources.privacy
    requests = SqlSubjectRequestService(resources.store, resources.audit, request_limits(privacy))
    work = PrivacyWork(
        resources.engine,
        requests,
        load_privacy_map(privacy.map_path),
        resources.privacy_key,
        ReplicaInvalidator(resources.engine, resources.cache),
        resources.storage,
    )

    async def cleanup(job_id: str) -> None:
        resources.storage.delete(job_id)
        jobs = tables.jobs
        async with resources.engine.connect() as connection:
            row = (
                await connection.execute(
                    sa.select(jobs.c.params, jobs.c.requested_by, jobs.c.status).where(
                        jobs.c.id == job_id
                    )
                )
            ).first()
        if row is None or "subjectRequestId" not in (row.params or {}):
            return
        failed = await requests.fail_unfinished(
            int(row.params["subjectRequestId"]),
            str(row.requested_by),
            f"the job ended {row.status} before the work was done",
        )
        if failed is not None:
            _log.warning("subject request failed with its job", subject_request=failed.id)

    def kind(name: str, run: JobRun) -> JobKind:
        return JobKind(
            name=name,
            run=run,
            timeout_seconds=privacy.subject_request_job_timeout_seconds,
            max_attempts=_MAX_ATTEMPTS,
            retry_delay_seconds=_RETRY_DELAY_SECONDS,
            retry_backoff_max_seconds=_RETRY_BACKOFF_MAX_SECONDS,
            result_ttl_seconds=resources.export.retention_seconds,
            heartbeat_timeout_seconds=resources.jobs.heartbeat_timeout_seconds,
            cleanup=cleanup,
        )

    return kind(ACCESS_KIND, work.run_access), kind(ERASURE_KIND, work.run_erasure)
