"""Resolvers of GDPR subject requests: create, verify, deny, extend, read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from dataintel.errors import BadUserInputError
from dataintel.resolvers.auth import actor
from dataintel.resolvers.commerce import page_request as page_request
from dataintel.resolvers.global_ids import object_key
from dataintel.resolvers.info import Info
from dataintel.services.artifacts import SignedUrl
from dataintel.services.jobs import JobStatus
from dataintel.services.pagination import Page, PageRequest
from dataintel.services.privacy import (
    NewSubjectRequest,
    SubjectRequestFilter,
    SubjectRequestRecord,
)

_DOMAIN = "gdpr"


def _key(raw: str, field: str, type_name: str, kind: str) -> int:
    try:
        return object_key(raw, type_name, kind)
    except BadUserInputError as error:
        raise BadUserInputError(
            error.message, domain=_DOMAIN, details={**error.details, "field": field}
        ) from None


def request_id(raw: str) -> int:
    """The key inside a subject request ID argument."""
    return _key(raw, "id", "SubjectRequest", "subject request")


def customer_id(raw: str) -> int:
    """The key inside the subject's customerId: a Customer's global id or the plain key."""
    return _key(raw, "subject.customerId", "Customer", "customer")


async def create(info: Info, new: NewSubjectRequest) -> SubjectRequestRecord:
    """Records a request as RECEIVED."""
    return await info.context.services.privacy.create(actor(info), new)


async def one(info: Info, raw_id: str) -> SubjectRequestRecord:
    """One request; NOT_FOUND for an unknown id."""
    return await info.context.services.privacy.get(actor(info), request_id(raw_id))


async def many(
    info: Info, page: PageRequest, where: SubjectRequestFilter
) -> tuple[Page[SubjectRequestRecord], Callable[[], Awaitable[int]]]:
    """A page of requests, newest first, with a count on demand."""
    service, who = info.context.services.privacy, actor(info)
    found = await service.requests(who, where, page)
    return found, lambda: service.count(who, where)


async def verify(info: Info, raw_id: str) -> SubjectRequestRecord:
    """RECEIVED → VERIFIED, and the work is handed to the job system."""
    return await info.context.services.privacy.verify(actor(info), request_id(raw_id))


async def deny(info: Info, raw_id: str, reason: str) -> SubjectRequestRecord:
    """RECEIVED or VERIFIED → DENIED."""
    return await info.context.services.privacy.deny(actor(info), request_id(raw_id), reason)


async def extend(info: Info, raw_id: str, months: int, reason: str) -> SubjectRequestRecord:
    """Moves the deadline later."""
    return await info.context.services.privacy.extend_deadline(
        actor(info), request_id(raw_id), months, reason
    )


async def package(
    info: Info, record: SubjectRequestRecord
) -> tuple[Mapping[str, Any], SignedUrl | None] | None:
    """The access package of a completed request and a signed URL while its file is kept."""
    result = record.result_mapping or {}
    found = result.get("package")
    if not isinstance(found, dict):
        return None
    if record.job_id is None:
        return found, None
    services = info.context.services
    job = await services.jobs.get(record.job_id)
    if job is None or job.status is not JobStatus.SUCCEEDED:
        return found, None
    return found, services.downloads.sign(record.job_id, int(found.get("part", 1)))
