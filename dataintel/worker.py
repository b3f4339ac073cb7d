"""``dataintel worker``: runs jobs delivered by SAQ on Redis, until SIGTERM or SIGINT.

On SIGTERM the worker takes no new job, lets running ones finish for the grace period
(DATAINTEL_JOBS_SHUTDOWN_GRACE_SECONDS), then hands the rest back to the queue: their
attempt is not counted and another worker (or this one, restarted) runs them again.
"""

from __future__ import annotations

import asyncio

from saq import Worker
from saq.types import PartialTimersDict
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.app import build_services
from dataintel.cache.redis_connection import create_redis
from dataintel.job_system import build_job_system
from dataintel.observability.drops import Drops
from dataintel.observability.logging import get_logger
from dataintel.platform import build_platform
from dataintel.services.job_kinds import JobResources
from dataintel.services.jobs import RUN_JOB_FUNCTION, JobMaintenance, SaqDispatcher, saq_function
from dataintel.services.privacy.keyed_hash import privacy_key
from dataintel.services.schema_usage import SchemaUsageRecorder
from dataintel.settings import Settings

_log = get_logger("dataintel.worker")

_CANCELLATION_DEADLINE_SECONDS = 10.0
"""How long a job handed back at shutdown has to record that before the process exits."""


async def run_worker(settings: Settings, engine: AsyncEngine, concurrency: int) -> None:
    """Runs jobs from the SAQ queue until a signal stops the worker (the caller disposes of
    the engine)."""
    redis = create_redis(settings.redis)
    platform = build_platform(settings.store, settings.redis, settings.cache, engine, redis)
    # The worker answers no GraphQL: its schema usage counts nothing.
    # The worker answers no status query: its drops are in its log.
    services = build_services(settings, engine, redis, platform, SchemaUsageRecorder({}), Drops())
    resources = JobResources(
        settings.jobs,
        settings.export,
        settings.privacy,
        privacy_key(settings.privacy, settings.auth, production=settings.production),
        engine,
        platform.store,
        services.artifacts,
        services.audit,
        services.analytics,
        platform.cache,
    )
    system = build_job_system(settings.jobs, settings.redis, resources, worker=True)
    dispatcher = system.dispatcher
    assert isinstance(dispatcher, SaqDispatcher)
    timers: PartialTimersDict = {
        "sweep": max(settings.jobs.sweep_seconds, 1),
        "worker_info": 5,
        "abort": 1,
        "schedule": 1,
    }
    worker = Worker(
        dispatcher.queue,
        functions=[(RUN_JOB_FUNCTION, saq_function(system.runner, dispatcher))],
        concurrency=concurrency,
        timers=timers,
        dequeue_timeout=1.0,
        shutdown_grace_period_s=settings.jobs.shutdown_grace_seconds,
        cancellation_hard_deadline_s=_CANCELLATION_DEADLINE_SECONDS,
    )
    maintenance = JobMaintenance(system.service, settings.jobs.sweep_seconds)
    try:
        await dispatcher.queue.connect()
        maintenance.start()
        _log.info(
            "worker started",
            queue=settings.jobs.queue_name,
            concurrency=concurrency,
            kinds=[kind.name for kind in system.kinds],
        )
        await worker.start()
    finally:
        await maintenance.aclose()
        await dispatcher.aclose()
        await services.jobs.dispatcher.aclose()
        # Entries of the jobs just stopped (exports, privacy transitions) are written before
        # the caller disposes of the engine; bounded, so a dead store cannot hold the exit.
        try:
            await asyncio.wait_for(services.audit.flush(), settings.server.shutdown_timeout_seconds)
        except TimeoutError:
            _log.warning("audit entries not written before the worker stopped")
        if redis is not None:
            await redis.aclose()
        _log.info("worker stopped")
