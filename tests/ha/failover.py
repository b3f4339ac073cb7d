"""`make ha-test`: the load flows at a fixed rate through nginx while replicas die, roll and
Redis restarts; a report per phase; exit 1 when a query was lost or recovery was too slow.

Phases, one after the other, under the same load:
  baseline   nothing happens
  kill       SIGKILL one replica, start it again, wait until nginx routes to it
  roll       SIGTERM each replica in turn (it drains, exits 0), start it again, wait for it
  redis      restart the private redis-server (its data is lost), then carry on
  after      nothing happens: everything must be back

Rules: no query may fail in any phase (nginx retries queries on another replica; a draining
replica finishes what it started). A mutation may fail only in `kill`, with 502 from nginx
(the replica died holding it; the client may retry). A restarted replica must be back in
rotation within RECOVERY_BOUND_SECONDS; a SIGTERMed one must exit 0.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ha.cluster import LOAD_EMAIL, LOAD_PASSWORD, REPO, Cluster, poll

RECOVERY_BOUND_SECONDS = float(os.environ.get("DATAINTEL_HA_RECOVERY_SECONDS", "45"))
USERS = int(os.environ.get("DATAINTEL_HA_USERS", "8"))
RATE_PER_USER = float(os.environ.get("DATAINTEL_HA_RATE_PER_USER", "1.5"))
STEADY_SECONDS = float(os.environ.get("DATAINTEL_HA_STEADY_SECONDS", "10"))
EXIT_SECONDS = 40.0


@dataclass(frozen=True, slots=True)
class Event:
    """One request as the load test saw it."""

    at: float
    flow: str
    kind: str
    status: int
    milliseconds: float
    error: str


@dataclass
class Phase:
    """A stretch of the run, and what was measured in it."""

    name: str
    started: float
    ended: float = 0.0
    recoveries: list[float] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)


def read_events(path: Path) -> list[Event]:
    """The events file the locustfile appends to (DATAINTEL_LOAD_EVENTS)."""
    events = []
    for line in path.read_text().split("\n"):
        if line.count("\t") < 5:
            continue  # the last line, when locust stopped while writing it
        at, flow, kind, status, milliseconds, *error = line.split("\t")
        events.append(
            Event(float(at), flow, kind, int(status), float(milliseconds), "".join(error))
        )
    return events


def p99(values: list[float]) -> float:
    """The 99th percentile (nearest rank)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class Failover:
    """Runs the phases against a started cluster while locust sends the load."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.phases: list[Phase] = []

    def phase(self, name: str) -> Phase:
        now = time.time()
        if self.phases:
            self.phases[-1].ended = now
        phase = Phase(name, now)
        self.phases.append(phase)
        print(f"phase {name}", flush=True)
        return phase

    def run(self) -> None:
        self.phase("baseline")
        time.sleep(STEADY_SECONDS)

        kill = self.phase("kill")
        victim = self.cluster.replicas[0]
        victim.signal(signal.SIGKILL)
        victim.wait(10)
        victim.start()
        kill.recoveries.append(self.cluster.in_rotation(0))
        time.sleep(STEADY_SECONDS / 2)

        roll = self.phase("roll")
        for index, replica in enumerate(self.cluster.replicas):
            replica.signal(signal.SIGTERM)
            roll.exit_codes.append(replica.wait(EXIT_SECONDS))
            replica.start()
            roll.recoveries.append(self.cluster.in_rotation(index))

        redis = self.phase("redis")
        redis.recoveries.append(self.cluster.restart_redis())
        time.sleep(STEADY_SECONDS)

        self.phase("after")
        time.sleep(STEADY_SECONDS)
        self.phases[-1].ended = time.time()

    def report(self, events: list[Event]) -> tuple[str, list[str]]:
        """The table per phase, and every broken rule."""
        problems: list[str] = []
        header = (
            f"{'phase':<9} {'seconds':>7} {'sent':>6} {'answered':>8} {'failed':>6}"
            f" {'q.fail':>6} {'m.fail':>6} {'p99 ms':>7}  recovery s / exit codes"
        )
        lines = [header]
        for phase in self.phases:
            inside = [e for e in events if phase.started <= e.at < phase.ended]
            failed = [e for e in inside if e.error]
            queries = [e for e in failed if e.kind == "query"]
            mutations = [e for e in failed if e.kind == "mutation"]
            recoveries = " ".join(f"{r:.1f}" for r in phase.recoveries) or "-"
            codes = " ".join(str(c) for c in phase.exit_codes)
            lines.append(
                f"{phase.name:<9} {phase.ended - phase.started:>7.1f} {len(inside):>6}"
                f" {len(inside) - len(failed):>8} {len(failed):>6} {len(queries):>6}"
                f" {len(mutations):>6} {p99([e.milliseconds for e in inside]):>7.0f}"
                f"  {recoveries}{' / ' + codes if codes else ''}"
            )
            problems += [
                f"{phase.name}: query lost: {e.flow} {e.status} {e.error}" for e in queries
            ]
            for event in mutations:
                if phase.name != "kill" or event.status != 502:
                    problems.append(f"{phase.name}: mutation failed: {event.flow} {event.error}")
            problems += [
                f"{phase.name}: recovery took {r:.1f}s > {RECOVERY_BOUND_SECONDS:.0f}s"
                for r in phase.recoveries
                if r > RECOVERY_BOUND_SECONDS
            ]
            problems += [
                f"{phase.name}: a replica exited {c} after SIGTERM" for c in phase.exit_codes if c
            ]
            if not inside:
                problems.append(f"{phase.name}: no request was sent")
        return "\n".join(lines), problems


def main() -> int:
    """Starts the cluster, drives it, prints the report; 1 when a rule was broken."""
    cluster = Cluster()
    events_path = cluster.directory / "events.tsv"
    locust: subprocess.Popen[bytes] | None = None
    failover = Failover(cluster)
    try:
        cluster.start()
        events_path.unlink(missing_ok=True)
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DATAINTEL_LOAD_EVENTS": str(events_path),
            "DATAINTEL_LOAD_RATE_PER_USER": str(RATE_PER_USER),
            "DATAINTEL_LOAD_EMAIL": LOAD_EMAIL,
            "DATAINTEL_LOAD_PASSWORD": LOAD_PASSWORD,
        }
        with (cluster.directory / "locust.log").open("wb") as log:
            locust = subprocess.Popen(
                [
                    sys.executable, "-m", "locust", "-f", str(REPO / "tests/load/locustfile.py"),
                    "--headless", "--host", cluster.origin, "--users", str(USERS),
                    "--spawn-rate", str(USERS), "--run-time", "30m", "--only-summary",
                    "--stop-timeout", "30",
                ],
                cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def signed_in() -> bool:
            if not events_path.exists():
                return False
            logins = [e for e in read_events(events_path) if e.flow == "login" and not e.error]
            return len(logins) >= USERS

        poll(signed_in, 120, "every load test user signed in")
        failover.run()
    finally:
        if locust is not None:
            locust.send_signal(signal.SIGTERM)
            try:
                locust.wait(60)
            except subprocess.TimeoutExpired:
                locust.kill()
        cluster.stop()
    table, problems = failover.report(read_events(events_path))
    text = (
        f"make ha-test: {USERS} users x {RATE_PER_USER}/s through nginx to 3 replicas;"
        f" recovery bound {RECOVERY_BOUND_SECONDS:.0f}s\n{table}\n"
        + ("\n".join(f"FAILED {p}" for p in problems) if problems else "PASSED: no query lost")
    )
    print(text)
    (cluster.directory / "report.txt").write_text(text + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
