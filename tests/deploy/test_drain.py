"""SIGTERM drains a real `dataintel serve`: /readyz fails at once, new requests are still
served for the drain period, every request in flight completes, and the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.plugins.server import ServedGateway, served_gateway

QUERY = b'{"query": "{ orders(first: 3) { nodes { id total } } }"}'
DEADLINE_SECONDS = 30.0
IN_FLIGHT = 8


def _get(origin: str, path: str) -> tuple[int, dict[str, object]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{origin}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _half_sent(origin: str) -> socket.socket:
    """A POST /graphql whose headers and first half of the body are sent: a request in flight."""
    address = urlsplit(origin)
    connection = socket.create_connection(
        (address.hostname, address.port), timeout=DEADLINE_SECONDS
    )
    head = (
        "POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(QUERY)}\r\n\r\n"
    ).encode()
    connection.sendall(head + QUERY[: len(QUERY) // 2])
    return connection


def _finish(connection: socket.socket) -> tuple[int, bytes]:
    """Sends the rest of the body and reads the whole response (the server closes after it)."""
    connection.sendall(QUERY[len(QUERY) // 2 :])
    received = b""
    while b"\r\n\r\n" not in received or not _complete(received):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    connection.close()
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _complete(received: bytes) -> bool:
    head, _, body = received.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _poll(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_SECONDS}s: {what}")
        time.sleep(0.05)


def _refuses_connections(origin: str) -> bool:
    address = urlsplit(origin)
    try:
        socket.create_connection((address.hostname, address.port), timeout=1).close()
    except OSError:
        return True
    return False


def _exit_code(served: ServedGateway) -> int:
    try:
        return served.process.wait(timeout=DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the server did not exit:\n{served.log_path.read_text()}")


@pytest.mark.redis
def test_sigterm_drains_and_every_request_in_flight_completes(
    tmp_path: Path, seeded_sqlite_url: str, redis_url: str
) -> None:
    with served_gateway(
        tmp_path,
        DATAINTEL_DATABASE_URL=seeded_sqlite_url,
        DATAINTEL_REDIS_URL=redis_url,
        DATAINTEL_AUTO_SEED="false",
        DATAINTEL_SHUTDOWN_DRAIN_SECONDS="2",
        DATAINTEL_SHUTDOWN_TIMEOUT_SECONDS="30",
    ) as served:
        assert _get(served.origin, "/readyz")[0] == 200
        in_flight = [_half_sent(served.origin) for _ in range(IN_FLIGHT)]

        served.process.send_signal(signal.SIGTERM)

        _poll(lambda: _get(served.origin, "/readyz") == (503, {"status": "draining"}), "draining")
        # Still serving during the drain period, telling clients to reconnect elsewhere.
        status, body = _post(served.origin)
        assert status == 200
        assert "errors" not in body
        # The drain period ends: the listener closes while the requests are still in flight.
        _poll(lambda: _refuses_connections(served.origin), "the listener closes")
        assert served.process.poll() is None

        answers = [_finish(connection) for connection in in_flight]
        assert [status for status, _ in answers] == [200] * IN_FLIGHT
        for _, answer in answers:
            nodes = json.loads(answer)["data"]["orders"]["nodes"]
            assert len(nodes) == 3
        assert _exit_code(served) == 0
        log = served.log_path.read_text()
        assert '"event":"draining"' in log
        assert '"event":"stopped"' in log


def _post(origin: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{origin}/graphql",
        data=QUERY,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        assert response.headers["Connection"] == "close"
        return response.status, json.loads(response.read())


def test_a_request_that_never_completes_is_cut_at_the_shutdown_timeout(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    with served_gateway(
        tmp_path,
        DATAINTEL_DATABASE_URL=seeded_sqlite_url,
        DATAINTEL_AUTO_SEED="false",
        DATAINTEL_SHUTDOWN_DRAIN_SECONDS="0",
        DATAINTEL_SHUTDOWN_TIMEOUT_SECONDS="1",
    ) as served:
        stuck = _half_sent(served.origin)
        served.process.send_signal(signal.SIGTERM)
        # Without the bound the process would wait for the rest of the body forever.
        assert _exit_code(served) == 0
        stuck.close()
        assert '"event":"stopped"' in served.log_path.read_text()


def test_a_second_sigterm_stops_without_waiting_out_the_drain(
    tmp_path: Path, seeded_sqlite_url: str
) -> None:
    with served_gateway(
        tmp_path,
        DATAINTEL_DATABASE_URL=seeded_sqlite_url,
        DATAINTEL_AUTO_SEED="false",
        # Far longer than the test's deadline: only the second signal can end it in time.
        DATAINTEL_SHUTDOWN_DRAIN_SECONDS="600",
    ) as served:
        served.process.send_signal(signal.SIGTERM)
        _poll(lambda: _get(served.origin, "/readyz")[0] == 503, "draining")
        served.process.send_signal(signal.SIGTERM)
        assert _exit_code(served) == 0
