"""Background jobs: kinds, their runs, and the service that enqueues, reads and cancels them.

The store's ``jobs`` table is every job's record of truth; SAQ on Redis (a ``dataintel
worker`` process) or the serving process itself (no Redis) delivers them to a runner.
"""

from dataintel.services.jobs.dispatch import (
    RUN_JOB_FUNCTION,
    EmbeddedDispatcher,
    JobDispatcher,
    SaqDispatcher,
    saq_function,
)
from dataintel.services.jobs.kinds import (
    JobCancelled,
    JobCleanup,
    JobContext,
    JobFailure,
    JobKind,
    JobKinds,
    JobRun,
)
from dataintel.services.jobs.records import TERMINAL_STATUSES, Job, JobFilter, JobStatus
from dataintel.services.jobs.runner import Done, JobRunner, Outcome, Retry
from dataintel.services.jobs.service import JobMaintenance, JobService
from dataintel.services.jobs.store import JobStore

__all__ = [
    "RUN_JOB_FUNCTION",
    "TERMINAL_STATUSES",
    "Done",
    "EmbeddedDispatcher",
    "Job",
    "JobCancelled",
    "JobCleanup",
    "JobContext",
    "JobDispatcher",
    "JobFailure",
    "JobFilter",
    "JobKind",
    "JobKinds",
    "JobMaintenance",
    "JobRun",
    "JobRunner",
    "JobService",
    "JobStatus",
    "JobStore",
    "Outcome",
    "Retry",
    "SaqDispatcher",
    "saq_function",
]
