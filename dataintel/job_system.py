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
from dataintel.settings import AuthSettings, ExportSettings, JobsSettings, RedisSettings


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


def saq_queue(redis: RedisSettings, jobs: JobsSettings) -> Queue:
    """The SAQ queue on Redis, on its own connections (dequeues block; the cache's must not)."""
    if redis.url is None:
        raise ValueError("the job queue needs DATAINTEL_REDIS_URL")
    return Queue.from_url(redis.url, name=jobs.queue_name)


def build_job_system(
    jobs: JobsSettings,
    redis: RedisSettings,
    resources: JobResources,
    *,
    worker: bool = False,
) -> JobSystem:
    """The kinds, runner, dispatcher and service; SAQ for a worker or when Redis is chosen."""
    kinds = build_job_kinds(resources)
    store = JobStore(resources.store)
    runner = JobRunner(store, kinds, jobs.heartbeat_seconds)
    dispatcher: JobDispatcher
    if worker or jobs.runs_on_redis(redis.url):
        dispatcher = SaqDispatcher(saq_queue(redis, jobs), kinds)
    else:
        dispatcher = EmbeddedDispatcher(runner, jobs.concurrency)
    return JobSystem(kinds, runner, dispatcher, JobService(store, kinds, dispatcher))


def download_signer(export: ExportSettings, auth: AuthSettings) -> DownloadSigner:
    """The signer of download URLs: its own key, else one derived from the JWT secret."""
    key: bytes | None = None
    if export.url_secret is not None:
        key = export.url_secret.get_secret_value().encode()
    elif auth.jwt_secret is not None:
        # A derived key, so that a download URL never doubles as anything signed with the JWT key.
        secret = auth.jwt_secret.get_secret_value().encode()
        key = hashlib.sha256(b"dataintel download urls\n" + secret).digest()
    return DownloadSigner(key, export.url_lifetime_seconds, export.public_base_url)
