"""GDPR subject requests: access (Art. 15) and erasure (Art. 17), with states and deadlines."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry

from dataintel.directives.auth import Auth, roles_granting
from dataintel.resolvers import privacy as resolvers
from dataintel.resolvers.info import Info
from dataintel.schema.commerce import FilterDescription
from dataintel.schema.pagination import (
    AfterArgument,
    BeforeArgument,
    Connection,
    FirstArgument,
    LastArgument,
)
from dataintel.services import privacy as records
from dataintel.services.privacy.requests import SCOPE_BY_TYPE, request_keyset

PRIVACY_OFFICERS = Auth(
    roles=sorted({role for scope in SCOPE_BY_TYPE.values() for role in roles_granting([scope])})
)
"""privacy_officer and admin: the roles holding a gdpr scope."""


@strawberry.enum(description="What the subject asks for.")
class SubjectRequestType(enum.Enum):
    ACCESS = strawberry.enum_value(
        "ACCESS", description="A copy of their data (GDPR Art. 15): one zip package."
    )
    ERASURE = strawberry.enum_value(
        "ERASURE", description="Erasure of their data (GDPR Art. 17), as the privacy map says."
    )


@strawberry.enum(description="Where a subject request stands.")
class SubjectRequestStatus(enum.Enum):
    RECEIVED = strawberry.enum_value("RECEIVED", description="Recorded; identity not checked.")
    VERIFIED = strawberry.enum_value(
        "VERIFIED", description="The requester is the subject; the work is queued."
    )
    IN_PROGRESS = strawberry.enum_value("IN_PROGRESS", description="The work is running.")
    COMPLETED = strawberry.enum_value("COMPLETED", description="Done for every dataset.")
    PARTIALLY_COMPLETED = strawberry.enum_value(
        "PARTIALLY_COMPLETED", description="Done for some datasets; `error` says why not all."
    )
    DENIED = strawberry.enum_value("DENIED", description="Refused; `denialReason` says why.")
    FAILED = strawberry.enum_value("FAILED", description="The work failed; `error` says how.")


@strawberry.type(description="What a request's work did to (or found in) one dataset.")
class SubjectRequestDataset:
    dataset: str = strawberry.field(description="The dataset's name in the privacy map.")
    table: str = strawberry.field(description="Its table.")
    rows: int | None = strawberry.field(description="Access: the subject's rows packaged.")
    sha256: str | None = strawberry.field(description="Access: SHA-256 of its file.")
    erasure: str | None = strawberry.field(description="Erasure: mask, delete or retain.")
    masked: int | None = strawberry.field(description="Erasure: rows whose values were erased.")
    deleted: int | None = strawberry.field(description="Erasure: rows deleted.")
    retained: int | None = strawberry.field(description="Erasure: rows kept under legalBasis.")
    legal_basis: str | None = strawberry.field(
        description="Erasure: the GDPR Art. 17(3) ground the rows are kept on."
    )
    legal_reason: str | None = strawberry.field(description="Erasure: why, in words.")
    error: str | None = strawberry.field(description="Why this dataset could not be done.")

    @classmethod
    def from_result(cls, item: dict[str, Any]) -> SubjectRequestDataset:
        return cls(
            dataset=str(item.get("dataset")),
            table=str(item.get("table", item.get("dataset"))),
            rows=item.get("rows"),
            sha256=item.get("sha256"),
            erasure=item.get("erasure"),
            masked=item.get("masked"),
            deleted=item.get("deleted"),
            retained=item.get("retained"),
            legal_basis=item.get("legalBasis"),
            legal_reason=item.get("legalReason"),
            error=item.get("error"),
        )


@strawberry.type(description="The access package: one zip of JSON files and a manifest.")
class SubjectAccessPackage:
    file: str = strawberry.field(description="The zip's file name.")
    bytes: int = strawberry.field(description="Its size.")
    sha256: str = strawberry.field(description="SHA-256 of the zip.")
    download_url: str | None = strawberry.field(
        description="A signed, expiring URL to download it; null when it cannot be served."
    )
    url_expires_at: datetime | None = strawberry.field(description="When downloadUrl expires.")


@strawberry.type(description="A data subject's request, its state, deadline and outcome.")
class SubjectRequest:
    id: strawberry.ID = strawberry.field(description="The request's id.")
    type: SubjectRequestType = strawberry.field(description="ACCESS or ERASURE.")
    status: SubjectRequestStatus = strawberry.field(description="Where it stands.")
    customer_id: strawberry.ID = strawberry.field(
        description="The subject: the customer it was resolved to when received."
    )
    reason: str = strawberry.field(description="Why the request was made, as recorded.")
    requested_by: str = strawberry.field(description="Who recorded it (user:<id>, ...).")
    received_at: datetime = strawberry.field(description="When it was received.")
    due_at: datetime = strawberry.field(
        description="When the answer is due: a calendar month after receipt, plus extensions."
    )
    extended_months: int = strawberry.field(description="Months the deadline was extended by.")
    extension_reason: str | None = strawberry.field(description="Why it was last extended.")
    verified_at: datetime | None = strawberry.field(description="When the subject was verified.")
    started_at: datetime | None = strawberry.field(description="When the work started.")
    finished_at: datetime | None = strawberry.field(description="When it ended.")
    denial_reason: str | None = strawberry.field(description="Why it was denied.")
    job_id: strawberry.ID | None = strawberry.field(description="The job doing its work.")
    error: str | None = strawberry.field(description="Why the work failed (in part).")
    datasets: list[SubjectRequestDataset] = strawberry.field(
        description="Per dataset, what the work did; empty until it ends."
    )
    caches_invalidated: bool | None = strawberry.field(
        description="Erasure: whether every replica was told to drop its cached entries of the"
        " subject (false: Redis did not take it; replicas serve theirs until their TTL)."
    )
    record: strawberry.Private[records.SubjectRequestRecord]

    @strawberry.field(
        description="ACCESS, once COMPLETED: the package, with a fresh signed download URL"
        " while its job's files are kept (null URL once they expired)."
    )
    async def package(self, info: Info) -> SubjectAccessPackage | None:
        found = await resolvers.package(info, self.record)
        if found is None:
            return None
        package, signed = found
        return SubjectAccessPackage(
            file=str(package["file"]),
            bytes=int(package["bytes"]),
            sha256=str(package["sha256"]),
            download_url=signed.url if signed else None,
            url_expires_at=signed.expires_at if signed else None,
        )

    @strawberry.field(description="Whether the deadline has passed before the request ended.")
    def overdue(self) -> bool:
        ended = self.status in (
            SubjectRequestStatus.COMPLETED,
            SubjectRequestStatus.PARTIALLY_COMPLETED,
            SubjectRequestStatus.DENIED,
            SubjectRequestStatus.FAILED,
        )
        moment = self.finished_at if ended and self.finished_at else datetime.now(UTC)
        return moment > self.due_at

    @classmethod
    def from_record(cls, record: records.SubjectRequestRecord) -> SubjectRequest:
        result = record.result_mapping or {}
        return cls(
            id=strawberry.ID(str(record.id)),
            type=SubjectRequestType(record.type),
            status=SubjectRequestStatus(record.status),
            customer_id=strawberry.ID(str(record.customer_id)),
            reason=record.reason,
            requested_by=record.requested_by,
            received_at=record.received_at,
            due_at=record.due_at,
            extended_months=record.extended_months,
            extension_reason=record.extension_reason,
            verified_at=record.verified_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            denial_reason=record.denial_reason,
            job_id=strawberry.ID(record.job_id) if record.job_id else None,
            error=record.error,
            datasets=[
                SubjectRequestDataset.from_result(item) for item in result.get("datasets", [])
            ],
            caches_invalidated=result.get("cachesInvalidated"),
            record=record,
        )


@strawberry.input(
    description="Who the request is about: exactly one of a customer id and an email."
)
class SubjectInput:
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer's id (global or plain)."
    )
    email: str | None = strawberry.field(
        default=None, description="The customer's email (any case)."
    )


@strawberry.input(description="A subject request as received.")
class CreateSubjectRequestInput:
    type: SubjectRequestType = strawberry.field(description="ACCESS or ERASURE.")
    subject: SubjectInput = strawberry.field(description="Who it is about.")
    reason: str = strawberry.field(
        description="How and why it was received (kept on the request, never in the audit log)."
    )

    def to_record(self) -> records.NewSubjectRequest:
        customer = self.subject.customer_id
        return records.NewSubjectRequest(
            type=self.type.name,
            customer_id=resolvers.customer_id(str(customer)) if customer is not None else None,
            email=self.subject.email,
            reason=self.reason,
        )


@strawberry.input(description="Subject requests matching every given condition.")
class SubjectRequestFilter:
    status: list[SubjectRequestStatus] | None = strawberry.field(
        default=None, description="Any of these states."
    )
    type: list[SubjectRequestType] | None = strawberry.field(
        default=None, description="Any of these types."
    )

    def to_record(self) -> records.SubjectRequestFilter:
        return records.SubjectRequestFilter(
            statuses=tuple(item.name for item in self.status) if self.status else None,
            types=tuple(item.name for item in self.type) if self.type else None,
        )


RequestIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="The subject request's id.")
]
ReasonArgument = Annotated[str, strawberry.argument(description="Why (kept on the request).")]


@strawberry.type
class PrivacyQuery:
    @strawberry.field(
        description="One subject request; null with NOT_FOUND for an unknown id.",
        directives=[PRIVACY_OFFICERS],
    )
    async def subject_request(self, info: Info, id: RequestIdArgument) -> SubjectRequest | None:
        return SubjectRequest.from_record(await resolvers.one(info, str(id)))

    @strawberry.field(
        description="Subject requests, newest first, filtered.", directives=[PRIVACY_OFFICERS]
    )
    async def subject_requests(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[SubjectRequestFilter | None, FilterDescription] = None,
    ) -> Connection[SubjectRequest] | None:
        where = filter.to_record() if filter is not None else records.SubjectRequestFilter()
        page = resolvers.page_request(info, first, after, last, before)
        found, count = await resolvers.many(info, page, where)
        return Connection.from_page(found, SubjectRequest.from_record, request_keyset, count)


@strawberry.type
class PrivacyMutation:
    @strawberry.mutation(
        description="Records a subject request as RECEIVED, due a calendar month later. An"
        " unknown subject is NOT_FOUND, a bad input BAD_USER_INPUT; both name the field.",
        directives=[PRIVACY_OFFICERS],
    )
    async def create_subject_request(
        self,
        info: Info,
        input: Annotated[
            CreateSubjectRequestInput, strawberry.argument(description="The request as received.")
        ],
    ) -> SubjectRequest | None:
        return SubjectRequest.from_record(await resolvers.create(info, input.to_record()))

    @strawberry.mutation(
        description="RECEIVED → VERIFIED: the requester proved to be the subject; the work"
        " (access package or erasure) is queued as a job at once.",
        directives=[PRIVACY_OFFICERS],
    )
    async def verify_subject(self, info: Info, id: RequestIdArgument) -> SubjectRequest | None:
        return SubjectRequest.from_record(await resolvers.verify(info, str(id)))

    @strawberry.mutation(
        description="RECEIVED or VERIFIED → DENIED, with the reason.",
        directives=[PRIVACY_OFFICERS],
    )
    async def deny_subject_request(
        self, info: Info, id: RequestIdArgument, reason: ReasonArgument
    ) -> SubjectRequest | None:
        return SubjectRequest.from_record(await resolvers.deny(info, str(id), reason))

    @strawberry.mutation(
        description="Extends dueAt by whole months (two at most in all), within the first"
        " month after receipt (GDPR Art. 12(3)).",
        directives=[PRIVACY_OFFICERS],
    )
    async def extend_deadline(
        self,
        info: Info,
        id: RequestIdArgument,
        reason: ReasonArgument,
        months: Annotated[int, strawberry.argument(description="Months to add (1 or 2).")] = 2,
    ) -> SubjectRequest | None:
        return SubjectRequest.from_record(await resolvers.extend(info, str(id), months, reason))
