"""An erasure run by a real `dataintel worker` process reaches two real gateway processes.

The worker shares nothing with the servers but the store and Redis: its cache invalidation
must reach their in-process entries and cached responses through Redis alone.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.plugins.server import REPO, running_gateway

pytestmark = pytest.mark.redis

SECRET = "process-test-secret-" + "y" * 28
PASSWORD = "correct horse battery staple"
SUBJECT = "3"
POLL_SECONDS = 120.0
DATAINTEL = (sys.executable, "-m", "dataintel")
OFFICER_OPTIONS = ("--role", "privacy_officer", "--password-stdin")
CUSTOMER = '{ customer(id: "3") { name email features(names: ["order_count"]) { status } } }'


def graphql(origin: str, query: str, token: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(trust_env=False, timeout=30) as client:
        response = client.post(
            f"{origin}/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@contextmanager
def running_worker(tmp_path: Path, environment: dict[str, str]) -> Iterator[None]:
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [*DATAINTEL, "worker"],
            cwd=REPO,
            env={**os.environ, **environment},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)


def test_an_erasure_by_a_worker_leaves_no_server_answering_the_old_name(
    tmp_path: Path, redis_url: str
) -> None:
    unique = secrets.token_hex(4)
    environment = {
        "DATAINTEL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        "DATAINTEL_REDIS_URL": redis_url,
        "DATAINTEL_JWT_SECRET": SECRET,
        "DATAINTEL_JOBS_QUEUE": "redis",
        "DATAINTEL_JOBS_QUEUE_NAME": f"gdpr-test-{unique}",
        "DATAINTEL_CACHE_KEY_PREFIX": f"gdpr-test-{unique}",
        "DATAINTEL_EXPORT_DIR": str(tmp_path / "exports"),
        "DATAINTEL_LOG_FORMAT": "json",
    }
    created = subprocess.run(
        [*DATAINTEL, "users", "create", "--email", "officer@example.test", *OFFICER_OPTIONS],
        cwd=REPO,
        env={**os.environ, **environment},
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    with ExitStack() as stack:
        origins = []
        for name in ("first", "second"):
            (tmp_path / name).mkdir()
            origins.append(stack.enter_context(running_gateway(tmp_path / name, **environment)))
        stack.enter_context(running_worker(tmp_path, environment))
        first, second = origins
        login = graphql(
            first,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            e="officer@example.test",
            p=PASSWORD,
        )
        token = login["login"]["token"]
        before = graphql(first, CUSTOMER, token)["customer"]
        for origin in origins:
            for _ in range(2):
                assert graphql(origin, CUSTOMER, token)["customer"] == before
        old_name, old_email = before["name"], before["email"]

        request = graphql(
            first,
            "mutation($s: ID!) { createSubjectRequest(input: {type: ERASURE,"
            ' subject: {customerId: $s}, reason: "Letter"}) { id } }',
            token,
            s=SUBJECT,
        )["createSubjectRequest"]
        graphql(
            first, "mutation($id: ID!) { verifySubject(id: $id) { id } }", token, id=request["id"]
        )
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            found = graphql(
                second,
                "query($id: ID!) { subjectRequest(id: $id) { status error } }",
                token,
                id=request["id"],
            )["subjectRequest"]
            if found["status"] not in ("VERIFIED", "IN_PROGRESS"):
                break
            log = (tmp_path / "worker.log").read_text(errors="replace")
            assert time.monotonic() < deadline, f"still {found['status']}:\n{log}"
            # A short pause between polls, bounded by the deadline above.
            time.sleep(0.2)
        assert found["status"] == "COMPLETED", found

        for origin in origins:
            after = graphql(origin, CUSTOMER, token)["customer"]
            assert after["name"] == "[erased]"
            assert after["email"].startswith("hmac:")
            assert after["features"] == [{"status": "NOT_FOUND"}]
            assert old_name not in str(after)
            assert old_email not in str(after)
