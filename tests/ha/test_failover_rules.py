"""The rules `make ha-test` judges a run by, on made-up events: a lost query fails it, a
mutation cut by a killed replica does not, a slow recovery or an unclean exit does."""

from __future__ import annotations

from tests.ha.cluster import Cluster
from tests.ha.failover import RECOVERY_BOUND_SECONDS, Event, Failover, Phase, p99


def _failover(*phases: Phase) -> Failover:
    failover = Failover(Cluster())
    failover.phases = list(phases)
    return failover


def _ok(at: float, kind: str = "query") -> Event:
    return Event(at, "orders paging", kind, 200, 10.0, "")


def test_a_clean_run_passes() -> None:
    failover = _failover(Phase("baseline", 0, 10), Phase("kill", 10, 20, recoveries=[3.0]))
    table, problems = failover.report([_ok(1), _ok(11, "mutation")])
    assert problems == []
    assert "baseline" in table


def test_a_lost_query_fails_the_run_in_any_phase() -> None:
    lost = Event(12, "feature lookup", "query", 502, 5.0, "HTTP 502")
    _, problems = _failover(Phase("kill", 10, 20)).report([_ok(11), lost])
    assert problems == ["kill: query lost: feature lookup 502 HTTP 502"]


def test_a_mutation_cut_by_the_kill_may_fail_with_502_only() -> None:
    cut = Event(12, "quality run", "mutation", 502, 5.0, "HTTP 502")
    _, problems = _failover(Phase("kill", 10, 20)).report([cut])
    assert problems == []
    _, problems = _failover(Phase("roll", 10, 20)).report([cut])
    assert problems == ["roll: mutation failed: quality run HTTP 502"]
    timeout = Event(12, "login", "mutation", 200, 5.0, "errors ['TIMEOUT']")
    _, problems = _failover(Phase("kill", 10, 20)).report([timeout])
    assert len(problems) == 1


def test_slow_recovery_unclean_exit_and_an_idle_phase_fail() -> None:
    slow = RECOVERY_BOUND_SECONDS + 1
    roll = Phase("roll", 0, 10, recoveries=[slow], exit_codes=[0, -9])
    _, problems = _failover(roll, Phase("after", 10, 20)).report([_ok(1)])
    assert f"roll: recovery took {slow:.1f}s > {RECOVERY_BOUND_SECONDS:.0f}s" in problems
    assert "roll: a replica exited -9 after SIGTERM" in problems
    assert "after: no request was sent" in problems


def test_p99_is_the_nearest_rank() -> None:
    assert p99([float(v) for v in range(1, 101)]) == 99.0
    assert p99([5.0]) == 5.0
    assert p99([]) == 0.0
