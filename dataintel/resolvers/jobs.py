"""Resolvers of background jobs: one's own jobs (an admin: everyone's), and cancelling them.

A job another requester made is NOT_FOUND for a viewer who may not see it, so its
existence is not revealed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dataintel.errors import NotFoundError
from dataintel.resolvers.auth import actor
from dataintel.resolvers.global_ids import uuid_key
from dataintel.resolvers.info import Info
from dataintel.services.jobs import Job, JobFilter
from dataintel.services.pagination import Page, PageRequest

_DOMAIN = "jobs"
ANONYMOUS_REQUESTER = "anonymous"


def requester(info: Info) -> str:
    """Who the request's jobs belong to: the actor's audit name, 'anonymous' without one."""
    viewer = actor(info)
    return viewer.audit_name if viewer.user_id is not None else ANONYMOUS_REQUESTER


def sees_every_job(info: Info) -> bool:
    """Whether the viewer may read everyone's jobs (admins)."""
    return actor(info).is_admin


def job_key(raw: str) -> str:
    """The job's UUID inside an ID argument: a Job's global id or the plain UUID."""
    key = uuid_key(raw, "Job")
    if key is None:
        raise NotFoundError(f"There is no job '{raw}'.", domain=_DOMAIN, details={"field": "id"})
    return key


async def visible_job(info: Info, raw: str) -> Job | None:
    """The job if the viewer may see it (their own, or any for an admin), else None."""
    job = await info.context.services.jobs.get(job_key(raw))
    if job is None or (job.requested_by != requester(info) and not sees_every_job(info)):
        return None
    return job


async def job(info: Info, raw: str) -> Job:
    """The job; NOT_FOUND when there is none the viewer may see."""
    found = await visible_job(info, raw)
    if found is None:
        raise NotFoundError(f"There is no job '{raw}'.", domain=_DOMAIN, details={"field": "id"})
    return found


async def jobs(
    info: Info, where: JobFilter, page: PageRequest
) -> tuple[Page[Job], Callable[[], Awaitable[int]]]:
    """A page of the viewer's jobs (an admin's: everyone's unless filtered), newest first."""
    if not sees_every_job(info):
        where = JobFilter(requested_by=requester(info), statuses=where.statuses, kinds=where.kinds)
    service = info.context.services.jobs
    return await service.list(where, page), lambda: service.count(where)


async def cancel(info: Info, raw: str) -> Job:
    """Cancels the job (see JobService.cancel); NOT_FOUND when the viewer may not see it."""
    found = await job(info, raw)
    return await info.context.services.jobs.cancel(found.id)
