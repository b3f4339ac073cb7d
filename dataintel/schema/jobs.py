"""Background jobs: their state, progress, errors, results and files with download URLs."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from dataintel.directives.auth import VIEWERS
from dataintel.resolvers import jobs as resolvers
from dataintel.resolvers.commerce import page_request
from dataintel.resolvers.info import Info
from dataintel.schema.node import Node, global_id
from dataintel.schema.pagination import (
    AfterArgument,
    BeforeArgument,
    Connection,
    FirstArgument,
    LastArgument,
)
from dataintel.services import jobs as records
from dataintel.services.artifacts import StoredPart, parts_of
from dataintel.services.pagination import Keyset


@strawberry.enum(description="Where a job stands.")
class JobStatus(enum.Enum):
    QUEUED = strawberry.enum_value("QUEUED", description="Waiting for a worker (or a retry).")
    RUNNING = strawberry.enum_value("RUNNING", description="A worker runs it now.")
    SUCCEEDED = strawberry.enum_value("SUCCEEDED", description="Done; see result and files.")
    FAILED = strawberry.enum_value("FAILED", description="Gave up; see error.")
    CANCELLED = strawberry.enum_value("CANCELLED", description="Stopped by cancelJob.")
    EXPIRED = strawberry.enum_value(
        "EXPIRED", description="Succeeded, then its files were deleted after their retention."
    )


@strawberry.type(description="Why a job (or its last attempt) failed.")
class JobError:
    code: str = strawberry.field(
        description="TIMEOUT, WORKER_LOST, CANCELLED, INTERNAL, HANDED_BACK or a job kind's"
        " own code (e.g. BAD_USER_INPUT)."
    )
    message: str = strawberry.field(description="What happened, for a person.")


@strawberry.type(description="A file a job wrote, with a signed URL to download it.")
class JobFile:
    number: int = strawberry.field(description="Its part number, from 1.")
    file_name: str = strawberry.field(description="The name it downloads as.")
    content_type: str = strawberry.field(description="Its media type.")
    bytes: float = strawberry.field(description="Its size in bytes (a Float: may exceed 2^31).")
    sha256: str = strawberry.field(description="SHA-256 of its bytes, hex; also its ETag.")
    rows: int | None = strawberry.field(description="Rows in it, when it holds rows.")
    compression: str | None = strawberry.field(description="gzip when compressed.")
    job_id: strawberry.Private[str]

    @strawberry.field(
        description="A signed URL to GET it (Range requests welcome); a new one each time"
        " it is asked, without running the job again."
    )
    def download_url(self, info: Info) -> str:
        return info.context.services.downloads.sign(self.job_id, self.number).url

    @strawberry.field(description="When downloadUrl stops working.")
    def url_expires_at(self, info: Info) -> datetime:
        return info.context.services.downloads.sign(self.job_id, self.number).expires_at

    @classmethod
    def from_record(cls, job_id: str, part: StoredPart) -> JobFile:
        return cls(
            number=part.number,
            file_name=part.file_name,
            content_type=part.content_type,
            bytes=float(part.bytes),
            sha256=part.sha256,
            rows=part.rows,
            compression=part.content_encoding,
            job_id=job_id,
        )


@strawberry.type(description="A background job: an export, a GDPR request's work, ...")
class Job(Node):
    database_id: str = strawberry.field(description="The job's UUID.")
    kind: str = strawberry.field(description="What it runs (e.g. export).")
    status: JobStatus = strawberry.field(description="Where it stands.")
    progress: float = strawberry.field(description="0 to 1; never goes down.")
    attempts: int = strawberry.field(description="Attempts started so far.")
    max_attempts: int = strawberry.field(description="Attempts it may take in all.")
    error: JobError | None = strawberry.field(
        description="Why it failed or was cancelled; while QUEUED for a retry, why the last"
        " attempt failed."
    )
    requested_by: str = strawberry.field(description="Who enqueued it.")
    idempotency_key: str | None = strawberry.field(description="The key it was enqueued with.")
    cancel_requested: bool = strawberry.field(description="Whether cancelJob asked it to stop.")
    created_at: datetime = strawberry.field(description="When it was enqueued.")
    started_at: datetime | None = strawberry.field(description="When its last attempt started.")
    heartbeat_at: datetime | None = strawberry.field(description="Its worker's last sign of life.")
    finished_at: datetime | None = strawberry.field(description="When it ended.")
    expires_at: datetime | None = strawberry.field(
        description="When its result and files are deleted (SUCCEEDED jobs)."
    )
    result: JSON | None = strawberry.field(description="What it produced, once SUCCEEDED.")
    files: list[JobFile] = strawberry.field(description="The files it wrote, once SUCCEEDED.")

    @classmethod
    def from_record(cls, record: records.Job) -> Job:
        has_files = record.status is records.JobStatus.SUCCEEDED
        return cls(
            id=global_id("Job", record.id),
            database_id=record.id,
            kind=record.kind,
            status=JobStatus(record.status.value),
            progress=record.progress,
            attempts=record.attempts,
            max_attempts=record.max_attempts,
            error=JobError(code=record.error_code, message=record.error_message or "")
            if record.error_code
            else None,
            requested_by=record.requested_by,
            idempotency_key=record.idempotency_key,
            cancel_requested=record.cancel_requested,
            created_at=record.created_at,
            started_at=record.started_at,
            heartbeat_at=record.heartbeat_at,
            finished_at=record.finished_at,
            expires_at=record.expires_at,
            result=JSON(dict(record.result)) if record.result is not None else None,
            files=[JobFile.from_record(record.id, part) for part in parts_of(record.result)]
            if has_files
            else [],
        )


def job_keyset(record: records.Job) -> Keyset:
    """A job's position in the newest-first order."""
    return (record.created_at, record.id)


@strawberry.input(description="Which jobs to list; every criterion given must hold.")
class JobFilter:
    status: list[JobStatus] | None = strawberry.field(default=None, description="Any of these.")
    kind: list[str] | None = strawberry.field(default=None, description="Any of these kinds.")

    def to_record(self) -> records.JobFilter:
        return records.JobFilter(
            statuses=tuple(records.JobStatus(item.name) for item in self.status)
            if self.status is not None
            else None,
            kinds=tuple(self.kind) if self.kind is not None else None,
        )


_JOB_ID = Annotated[
    strawberry.ID, strawberry.argument(description="The job's global id (or its UUID).")
]


@strawberry.type
class JobsQuery:
    @strawberry.field(
        description="A job you enqueued (an admin: any job); null with NOT_FOUND otherwise.",
        directives=[VIEWERS],
    )
    async def job(self, info: Info, id: _JOB_ID) -> Job | None:
        return Job.from_record(await resolvers.job(info, str(id)))

    @strawberry.field(
        description="Your jobs (an admin: everyone's), newest first.", directives=[VIEWERS]
    )
    async def jobs(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[
            JobFilter | None, strawberry.argument(description="Which jobs; none: all.")
        ] = None,
    ) -> Connection[Job] | None:
        page = page_request(info, first, after, last, before)
        where = filter.to_record() if filter else records.JobFilter()
        found, count = await resolvers.jobs(info, where, page)
        return Connection.from_page(found, Job.from_record, job_keyset, count)


@strawberry.type
class JobsMutation:
    @strawberry.mutation(
        description="Cancels a job you enqueued (an admin: any): a QUEUED job is CANCELLED at"
        " once, a RUNNING one stops at its next heartbeat (and deletes what it wrote); a"
        " finished job is returned as it is. NOT_FOUND for a job you may not see.",
        directives=[VIEWERS],
    )
    async def cancel_job(self, info: Info, id: _JOB_ID) -> Job | None:
        return Job.from_record(await resolvers.cancel(info, str(id)))
