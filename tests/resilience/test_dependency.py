"""The dependency guard: pybreaker driven from asyncio, time budgets, typed errors."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dataintel.errors import BadUserInputError, DependencyTimeoutError, DependencyUnavailableError
from dataintel.observability.logging import configure_logging
from dataintel.resilience import Dependencies, Dependency, DependencyPolicy
from tests.plugins.faults import eventually


class Down(ConnectionError):
    """What a dependency that does not answer raises."""


def guard(
    *, timeout: float = 1.0, fail_max: int = 3, reset: float = 0.2, name: str = "upstream"
) -> Dependency:
    return Dependency(
        name,
        "http",
        DependencyPolicy(timeout_seconds=timeout, fail_max=fail_max, reset_timeout_seconds=reset),
        lambda error: isinstance(error, ConnectionError | TimeoutError),
    )


async def fail() -> None:
    raise Down("connection refused")


async def answer() -> str:
    return "ok"


async def test_opens_after_fail_max_and_then_fails_fast() -> None:
    dependency = guard(fail_max=3, reset=60)
    attempts = 0

    async def counted() -> None:
        nonlocal attempts
        attempts += 1
        await fail()

    for _ in range(3):
        with pytest.raises(DependencyUnavailableError):
            await dependency.call(counted)
    assert dependency.state == "open"
    with pytest.raises(DependencyUnavailableError) as raised:
        await dependency.call(counted)
    assert attempts == 3, "an open breaker must not call the dependency"
    error = raised.value
    assert error.retryable is True
    assert 59 <= (error.retry_after or 0) <= 60
    assert error.extensions()["dependency"] == "upstream"
    assert not dependency.available()


@pytest.fixture
def structured_logs() -> None:
    """The gateway's logging, set up before pytest starts capturing the test's records."""
    configure_logging("json", "info")


@pytest.mark.usefixtures("structured_logs")
async def test_recovers_through_half_open_to_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    dependency = guard(fail_max=1, reset=0.1)
    with pytest.raises(DependencyUnavailableError):
        await dependency.call(fail)
    assert dependency.state == "open"

    async def trial_succeeds() -> bool:
        try:
            return await dependency.call(answer) == "ok"
        except DependencyUnavailableError:
            return False

    await eventually(trial_succeeds)
    assert dependency.snapshot().state == "closed"
    changes = [
        (record.msg["previous"], record.msg["state"])
        for record in caplog.records
        if isinstance(record.msg, dict) and record.msg.get("event") == "breaker state changed"
    ]
    assert changes == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


async def test_failed_trial_reopens() -> None:
    dependency = guard(fail_max=1, reset=0.05)
    with pytest.raises(DependencyUnavailableError):
        await dependency.call(fail)
    await eventually(lambda: _true(dependency.available()))
    with pytest.raises(DependencyUnavailableError):
        await dependency.call(fail)
    assert dependency.state == "open"
    assert dependency.snapshot().retry_after_seconds is not None


async def test_half_open_lets_one_trial_through() -> None:
    dependency = guard(fail_max=1, reset=0.05)
    with pytest.raises(DependencyUnavailableError):
        await dependency.call(fail)
    await eventually(lambda: _true(dependency.available()))
    release = asyncio.Event()

    async def slow_trial() -> str:
        await release.wait()
        return "ok"

    trial = asyncio.create_task(dependency.call(slow_trial))
    await eventually(lambda: _true(dependency.state == "half-open"))
    with pytest.raises(DependencyUnavailableError, match="being retried"):
        await dependency.call(answer)
    release.set()
    assert await trial == "ok"
    assert dependency.state == "closed"


async def test_time_budget_is_a_timeout_that_counts() -> None:
    dependency = guard(timeout=0.05, fail_max=2, reset=60)

    async def hang() -> None:
        await asyncio.sleep(30)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DependencyTimeoutError) as raised:
        await dependency.call(hang)
    assert loop.time() - started < 1
    assert raised.value.extensions()["code"] == "TIMEOUT"
    assert raised.value.retryable is True
    with pytest.raises(DependencyTimeoutError):
        await dependency.call(hang)
    assert dependency.state == "open"


async def test_errors_that_are_not_failures_pass_through_uncounted() -> None:
    dependency = guard(fail_max=1, reset=60)

    async def bad_input() -> None:
        raise BadUserInputError("no such measure")

    async def bug() -> None:
        raise KeyError("a bug, not an outage")

    with pytest.raises(BadUserInputError):
        await dependency.call(bad_input)
    with pytest.raises(KeyError):
        await dependency.call(bug)
    assert dependency.state == "closed"
    assert dependency.snapshot().failures == 0


async def test_a_success_resets_the_count() -> None:
    dependency = guard(fail_max=2, reset=60)
    with pytest.raises(DependencyUnavailableError):
        await dependency.call(fail)
    assert await dependency.call(answer) == "ok"
    with pytest.raises(DependencyUnavailableError):
        await dependency.call(fail)
    assert dependency.state == "closed"


async def test_cancelled_call_does_not_open_a_closed_breaker() -> None:
    dependency = guard(fail_max=1, reset=60)
    started = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        await asyncio.sleep(30)

    task = asyncio.create_task(dependency.call(wait_forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dependency.state == "closed"


async def test_registry_snapshots() -> None:
    registry = Dependencies([guard(name="a"), guard(name="b")])
    assert [snapshot.name for snapshot in registry.snapshots()] == ["a", "b"]
    assert registry["a"].snapshot().state == "closed"
    assert registry.get("c") is None


async def _true(value: bool) -> bool:
    return value
