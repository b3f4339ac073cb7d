"""What runs jobs in a process: the kinds, the runner, the dispatcher and the job service.

The serving process delivers jobs to SAQ on Redis (run by ``dataintel worker``) or, without
Redis, runs them itself on a bounded pool; a worker process always uses SAQ.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from saq.queue import Queue

from dataintel.services.artifacts import DownloadSigner
from dataintel.services.job_kinds import JobResources, build_job_kinds
from dataintel.services.jobs import (
    EmbeddedDispatcher,
    JobDispatcher,
    JobKinds,
    JobRunner,
    JobService,
    JobStore,
    SaqDispatcher,
)
from dataintel.settings import Settings


@dataclass(frozen=True, slots=True)
class JobSystem:
    """The job machinery of one process."""

    kinds: JobKinds
    runner: JobRunner
    dispatcher: JobDispatcher
    service: JobService

    @property
    def embedded(self) -> bool:
        """Whether this process runs its jobs itself."""
        return isinstance(self.dispatcher, EmbeddedDispatcher)


def saq_queue(settings: Settings) -> Queue:
    """The SAQ queue on Redis, on its own connections (dequeues block; the cache's must not)."""
    if settings.redis.url is None:
        raise ValueError("the job queue needs DATAINTEL_REDIS_URL")
    return Queue.from_url(settings.redis.url, name=settings.jobs.queue_name)


def build_job_system(
    settings: Settings, resources: JobResources, *, worker: bool = False
) -> JobSystem:
    """The kinds, runner, dispatcher and service; SAQ for a worker or when Redis is chosen."""
    kinds = build_job_kinds(resources)
    store = JobStore(resources.store)
    runner = JobRunner(store, kinds, settings.jobs.heartbeat_seconds)
    dispatcher: JobDispatcher
    if worker or settings.jobs_use_redis:
        dispatcher = SaqDispatcher(saq_queue(settings), kinds)
    else:
        dispatcher = EmbeddedDispatcher(runner, settings.jobs.concurrency)
    return JobSystem(kinds, runner, dispatcher, JobService(store, kinds, dispatcher))


def download_signer(settings: Settings) -> DownloadSigner:
    """The signer of download URLs: its own key, else one derived from the JWT secret."""
    key: bytes | None = None
    if settings.export.url_secret is not None:
        key = settings.export.url_secret.get_secret_value().encode()
    elif settings.auth.jwt_secret is not None:
        # A derived key, so that a download URL never doubles as anything signed with the JWT key.
        secret = settings.auth.jwt_secret.get_secret_value().encode()
        key = hashlib.sha256(b"dataintel download urls\n" + secret).digest()
    return DownloadSigner(
        key, settings.export.url_lifetime_seconds, settings.export.public_base_url
    )
