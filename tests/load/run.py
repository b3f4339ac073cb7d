"""`make loadtest`: the business flows under locust, headless; a table per flow; exit 1 on any
failure. Reports (CSV and HTML) go to var/loadtest/.

    python -m tests.load.run --host http://127.0.0.1:8000 --users 20 --run-time 60s
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def ensure_account(environment: dict[str, str]) -> None:
    """Creates the load test's user in the store the server uses (kept when it exists)."""
    password = environment.get("DATAINTEL_LOAD_PASSWORD", "loadtest-password-not-secret")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "dataintel"),
            "users",
            "create",
            "--email",
            environment.get("DATAINTEL_LOAD_EMAIL", "loadtest@dataintel.local"),
            "--role",
            "admin",
            "--password-stdin",
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0 and "exists" not in result.stderr:
        raise SystemExit(f"cannot create the load test user: {result.stderr.strip()}")


def run_locust(host: str, users: int, run_time: str, out: Path, environment: dict[str, str]) -> int:
    """Runs locust headless; returns its exit code (1 when any request failed)."""
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--users",
        str(users),
        # Users arrive two a second: a burst of simultaneous sign-ins (argon2, an audited
        # write each) is another test, and on SQLite it queues behind one writer.
        "--spawn-rate",
        "2",
        "--run-time",
        run_time,
        "--stop-timeout",
        "30",
        "--csv",
        str(out / "loadtest"),
        "--html",
        str(out / "report.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    env = {**environment, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, env=env, cwd=REPO, check=False).returncode


def summary(stats_csv: Path) -> tuple[list[list[str]], int]:
    """The per-flow table (rps, p50, p95, p99, failures) and the total failure count."""
    rows: list[list[str]] = []
    failures = 0
    with stats_csv.open() as file:
        for row in csv.DictReader(file):
            requests = int(row["Request Count"])
            failed = int(row["Failure Count"])
            if row["Name"] != "Aggregated":
                failures += failed
            percent = 100.0 * failed / requests if requests else 0.0
            rows.append(
                [
                    row["Name"],
                    str(requests),
                    f"{float(row['Requests/s']):.1f}",
                    row["50%"],
                    row["95%"],
                    row["99%"],
                    f"{percent:.2f}%",
                ]
            )
    return rows, failures


def print_table(rows: list[list[str]]) -> None:
    """Prints the table with aligned columns."""
    header = ["flow", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "failed"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))


def main() -> int:
    """Runs the load test and prints the table; non-zero when any request failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host", default=os.environ.get("DATAINTEL_LOAD_HOST", "http://127.0.0.1:8000")
    )
    parser.add_argument(
        "--users", type=int, default=int(os.environ.get("DATAINTEL_LOAD_USERS", "5"))
    )
    parser.add_argument("--run-time", default=os.environ.get("DATAINTEL_LOAD_RUN_TIME", "30s"))
    parser.add_argument("--out", type=Path, default=REPO / "var" / "loadtest")
    parser.add_argument(
        "--no-account", action="store_true", help="The load test user exists already (make ha)."
    )
    arguments = parser.parse_args()
    environment = dict(os.environ)
    if not arguments.no_account:
        ensure_account(environment)
    code = run_locust(
        arguments.host, arguments.users, arguments.run_time, arguments.out, environment
    )
    rows, failures = summary(arguments.out / "loadtest_stats.csv")
    print_table(rows)
    print(f"reports: {arguments.out / 'loadtest_stats.csv'}, {arguments.out / 'report.html'}")
    if failures or code:
        print(f"FAILED: {failures} requests failed (locust exit {code})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
