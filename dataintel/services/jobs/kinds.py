"""Job kinds: what a job runs, with its own timeout, attempts, backoff and result lifetime.

A queue library's defaults (SAQ: a 10 s timeout, one attempt, a 10-minute result TTL) fit no
real job, so a kind has no defaults for them: every kind states its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dataintel.observability.logging import get_logger

_log = get_logger("dataintel.jobs")


class JobFailure(Exception):
    """Raised by a job's ``run`` to fail with a code and a message the requester may read."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


class JobCancelled(Exception):
    """Raised by ``JobContext.raise_if_cancelled`` when the job was asked to stop."""


class JobContext(Protocol):
    """What a running job may know and do besides its parameters."""

    @property
    def job_id(self) -> str: ...

    @property
    def requested_by(self) -> str: ...

    @property
    def attempt(self) -> int:
        """1 on the first run, 2 on the first retry, ..."""
        ...

    async def report_progress(self, fraction: float) -> None:
        """Records progress 0..1; a value below the last one is ignored (progress only grows)."""
        ...

    def cancelled(self) -> bool:
        """Whether cancelJob asked this job to stop (checked with every heartbeat)."""
        ...

    def raise_if_cancelled(self) -> None:
        """Raises JobCancelled when the job was asked to stop."""
        ...


JobRun = Callable[[JobContext, Mapping[str, Any]], Coroutine[Any, Any, Mapping[str, Any]]]
"""``run(ctx, params) -> result``: params and result are JSON objects."""

JobCleanup = Callable[[str], Awaitable[None]]
"""Called with the job id when a job fails, is cancelled or expires: deletes what it wrote."""


@dataclass(frozen=True, slots=True)
class JobKind:
    """A kind of job and how it is run; every limit is the kind's own."""

    name: str
    run: JobRun
    timeout_seconds: float
    """Longest one attempt may run; beyond it the attempt fails with TIMEOUT."""
    max_attempts: int
    """Attempts in all (1: never retried)."""
    retry_delay_seconds: float
    """Delay before the first retry; doubled for each later one."""
    retry_backoff_max_seconds: float
    """The longest delay between attempts."""
    result_ttl_seconds: int
    """How long a SUCCEEDED job keeps its result (and files) before it is EXPIRED."""
    heartbeat_timeout_seconds: float
    """A RUNNING job whose heartbeat is older than this lost its worker: retried or failed."""
    cleanup: JobCleanup | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"job kind {self.name}: max_attempts must be at least 1")
        if self.timeout_seconds <= 0 or self.heartbeat_timeout_seconds <= 0:
            raise ValueError(f"job kind {self.name}: timeouts must be positive")

    async def clean_up(self, job_id: str) -> None:
        """Runs the kind's cleanup for a job that will not succeed (failed, cancelled,
        expired); its own failure is logged, never raised: the job's state stands."""
        if self.cleanup is None:
            return
        try:
            await self.cleanup(job_id)
        except Exception:
            _log.exception("job cleanup failed", job_id=job_id, kind=self.name)

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait before the attempt after ``attempt`` (exponential, capped)."""
        delay = self.retry_delay_seconds * (2 ** max(attempt - 1, 0))
        return float(min(delay, self.retry_backoff_max_seconds))


class JobKinds:
    """The registry of job kinds a process can run (the app and the worker build the same)."""

    def __init__(self, kinds: Mapping[str, JobKind] | None = None) -> None:
        self._kinds: dict[str, JobKind] = dict(kinds or {})

    def register(self, kind: JobKind) -> None:
        """Adds a kind; a second kind of the same name is a programming error."""
        if kind.name in self._kinds:
            raise ValueError(f"job kind {kind.name} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind | None:
        """The kind of that name, if registered."""
        return self._kinds.get(name)

    def __iter__(self) -> Iterator[JobKind]:
        return iter(self._kinds.values())

    def __contains__(self, name: object) -> bool:
        return name in self._kinds
