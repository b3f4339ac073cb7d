"""A guard around one dependency: a pybreaker circuit breaker and a time budget per call.

pybreaker is synchronous: ``breaker.call(async_fn)`` only sees a coroutine object and never
trips, and ``call_async`` needs tornado. ``with breaker.calling():`` around the awaited work
is what counts each call's outcome from asyncio. Breaker state lives in this process (as in
Envoy or Resilience4j): pybreaker's Redis storage uses the blocking client, and a shared
breaker would also trip every replica for one replica's network trouble.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar, cast

import pybreaker

from dataintel.errors import DependencyTimeoutError, DependencyUnavailableError, GatewayError
from dataintel.observability.logging import get_logger

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half-open"]
FailureTest = Callable[[BaseException], bool]

_log = get_logger("dataintel.resilience")
# Retry hint after a failed call while the breaker is still closed.
_RETRY_AFTER_CLOSED_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class DependencyPolicy:
    """How one dependency is guarded: its time budget and when its breaker opens and retries."""

    timeout_seconds: float
    fail_max: int
    reset_timeout_seconds: float


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One breaker's state as the status query and /readyz report it."""

    name: str
    kind: str
    state: BreakerState
    failures: int
    fail_max: int
    reset_timeout_seconds: float
    timeout_seconds: float
    retry_after_seconds: float | None
    changed_at: datetime | None


class DependencyObserver(Protocol):
    """Told of every call and breaker state change (the metrics)."""

    def on_call(self, dependency: str, failure: str | None) -> None: ...

    def on_state_change(self, dependency: str, state: str) -> None: ...


class _StateLog(pybreaker.CircuitBreakerListener):
    """Logs every state change and remembers when the breaker opened."""

    def __init__(self, dependency: Dependency) -> None:
        self._dependency = dependency

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        self._dependency._changed(old_state.name if old_state else None, new_state.name)


class Dependency:
    """One dependency's breaker and time budget, driven correctly from asyncio."""

    def __init__(
        self, name: str, kind: str, policy: DependencyPolicy, is_failure: FailureTest
    ) -> None:
        self.name = name
        self.kind = kind
        self.policy = policy
        self._is_failure = is_failure
        self._opened_at: float | None = None
        self._changed_at: datetime | None = None
        self._trial_running = False
        self.times_opened = 0
        """How often the breaker has opened in this process (metrics, tests)."""
        self.observer: DependencyObserver | None = None
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=policy.fail_max,
            reset_timeout=policy.reset_timeout_seconds,
            exclude=[self._not_counted],
            listeners=[_StateLog(self)],
            name=name,
            # The original error says whether it was a timeout; the breaker's own would not.
            throw_new_error_on_trip=False,
        )

    @property
    def state(self) -> BreakerState:
        """closed, open or half-open."""
        return cast(BreakerState, self._breaker.current_state)

    def snapshot(self) -> BreakerSnapshot:
        """The breaker's state, failure count and retry hint right now."""
        state = self.state
        return BreakerSnapshot(
            name=self.name,
            kind=self.kind,
            state=state,
            failures=self._breaker.fail_counter,
            fail_max=self.policy.fail_max,
            reset_timeout_seconds=self.policy.reset_timeout_seconds,
            timeout_seconds=self.policy.timeout_seconds,
            retry_after_seconds=self.retry_after() if state != "closed" else None,
            changed_at=self._changed_at,
        )

    def available(self) -> bool:
        """False while the breaker is open and its reset timeout has not elapsed."""
        if self._trial_running:
            return False
        if self.state != "open" or self._opened_at is None:
            return True
        return time.monotonic() >= self._opened_at + self.policy.reset_timeout_seconds

    def retry_after(self) -> float:
        """Seconds a client should wait before trying again."""
        if self.state == "closed" or self._opened_at is None:
            return min(_RETRY_AFTER_CLOSED_SECONDS, self.policy.reset_timeout_seconds)
        remaining = self._opened_at + self.policy.reset_timeout_seconds - time.monotonic()
        # Tenths of a second, never zero: a client told "0" would retry in a tight loop.
        return max(0.1, math.ceil(remaining * 10) / 10)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Awaits ``operation()`` within the budget, behind the breaker."""
        async with self.section():
            return await operation()

    @asynccontextmanager
    async def section(self, timeout_seconds: float | None = None) -> AsyncIterator[None]:
        """A block run within the budget, behind the breaker; failures become typed errors.

        ``timeout_seconds`` replaces the policy's budget for this block (bulk work).
        """
        budget = self.policy.timeout_seconds if timeout_seconds is None else timeout_seconds
        observer = self.observer
        if self._trial_running:
            # Half-open lets one trial through; the others fail fast until it has answered.
            if observer is not None:
                observer.on_call(self.name, "open")
            raise self._unavailable("is being retried")
        try:
            with self._breaker.calling(), self._trial():
                async with asyncio.timeout(budget):
                    yield
        except pybreaker.CircuitBreakerError:
            if observer is not None:
                observer.on_call(self.name, "open")
            raise self._unavailable("is unavailable (circuit open)") from None
        except TimeoutError as error:
            if observer is not None:
                observer.on_call(self.name, "timeout")
            _log.warning(
                "dependency call timed out",
                dependency=self.name,
                timeout_seconds=budget,
            )
            raise DependencyTimeoutError(
                f"The {self.name} did not answer within {budget:g} seconds.",
                retry_after=self.retry_after(),
                details={"dependency": self.name},
            ) from error
        except GatewayError:
            if observer is not None:
                observer.on_call(self.name, None)
            raise
        except Exception as error:
            if not self._is_failure(error):
                if observer is not None:
                    observer.on_call(self.name, None)
                raise
            if observer is not None:
                observer.on_call(self.name, "error")
            _log.warning(
                "dependency call failed",
                dependency=self.name,
                error=type(error).__name__,
                detail=str(error).splitlines()[0][:300] if str(error) else None,
            )
            raise self._unavailable("is unavailable") from error
        else:
            if observer is not None:
                observer.on_call(self.name, None)

    @contextmanager
    def _trial(self) -> Iterator[None]:
        """Marks the block as the half-open trial when the breaker let it through as one."""
        trial = self.state == "half-open"
        if trial:
            self._trial_running = True
        try:
            yield
        finally:
            if trial:
                self._trial_running = False

    def _not_counted(self, error: BaseException) -> bool:
        if isinstance(error, asyncio.CancelledError):
            # A cancelled call says nothing of the dependency's health, except that a
            # half-open trial did not succeed.
            return self.state != "half-open"
        return not self._is_failure(error)

    def _unavailable(self, what: str) -> DependencyUnavailableError:
        return DependencyUnavailableError(
            f"The {self.name} {what}.",
            retry_after=self.retry_after(),
            details={"dependency": self.name},
        )

    def _changed(self, previous: str | None, state: str) -> None:
        self._changed_at = datetime.now(UTC)
        self._opened_at = time.monotonic() if state == "open" else None
        if state == "open":
            self.times_opened += 1
        if self.observer is not None:
            self.observer.on_state_change(self.name, state)
        log = _log.warning if state == "open" else _log.info
        log(
            "breaker state changed",
            dependency=self.name,
            previous=previous,
            state=state,
            failures=self._breaker.fail_counter,
            reset_timeout_seconds=self.policy.reset_timeout_seconds,
        )


class Dependencies:
    """Every guarded dependency of this process, by name."""

    def __init__(self, dependencies: Iterable[Dependency]) -> None:
        self._by_name = {dependency.name: dependency for dependency in dependencies}

    def __getitem__(self, name: str) -> Dependency:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Dependency]:
        return iter(self._by_name.values())

    def get(self, name: str) -> Dependency | None:
        """The dependency of that name, or None."""
        return self._by_name.get(name)

    def snapshots(self) -> list[BreakerSnapshot]:
        """Every breaker's state right now."""
        return [dependency.snapshot() for dependency in self._by_name.values()]
