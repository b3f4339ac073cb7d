"""The business flows under load (docs/operations.md, "Load tests").

Run by `make loadtest` (tests/load/run.py): locust, headless, against DATAINTEL_LOAD_HOST.
Every request is named for its flow, so locust's statistics are per flow. A request fails
when its status is not 200 or its body carries errors. Each simulated user signs in once and
presents its own client address (X-Forwarded-For, trusted from loopback by uvicorn), as many
real clients would, so per-client limits apply per user and not to the whole test.

With DATAINTEL_LOAD_EVENTS set, every request is also appended to that file as one line
(time, flow, kind, status, milliseconds, error): `make ha-test` cuts it into phases.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from typing import Any

from locust import HttpUser, between, constant_throughput, events, task
from locust.clients import ResponseContextManager

from tests.load import operations

RATE = float(os.environ.get("DATAINTEL_LOAD_RATE_PER_USER", "0"))
EMAIL = os.environ.get("DATAINTEL_LOAD_EMAIL", "loadtest@dataintel.local")
PASSWORD = os.environ.get("DATAINTEL_LOAD_PASSWORD", "loadtest-password-not-secret")
EVENTS_PATH = os.environ.get("DATAINTEL_LOAD_EVENTS")
EXPORT_POLL_SECONDS = 30.0
EXPORT_EVERY_SECONDS = 10.0
"""Exports are rate limited per viewer (10 a minute) and every simulated user signs in as
the same one: the flow runs at most once per this many seconds for the whole test."""
_next_export = 0.0
_events_file = open(EVENTS_PATH, "a", buffering=1) if EVENTS_PATH else None  # noqa: SIM115


def _record(
    name: str,
    response_time: float,
    exception: BaseException | None,
    context: dict[str, Any],
    response: Any = None,
    **_: Any,
) -> None:
    if _events_file is None:
        return
    status = getattr(response, "status_code", 0) or 0
    error = "" if exception is None else " ".join(str(exception).split())
    kind = context.get("kind", "query")
    _events_file.write(
        f"{time.time():.3f}\t{name}\t{kind}\t{status}\t{response_time:.1f}\t{error[:200]}\n"
    )


events.request.add_listener(_record)  # type: ignore[no-untyped-call]


class GatewayUser(HttpUser):
    """One client of the gateway: a dashboard, an analyst, a front-end paging orders."""

    wait_time = constant_throughput(RATE) if RATE > 0 else between(0.05, 0.2)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.address = (
            f"10.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
        )
        self.token: str | None = None
        for _ in range(5):
            self.token = self._login()
            if self.token:
                break
        self._register_dashboard()

    def _headers(self, kind: str = "query", method: str = "POST") -> dict[str, str]:
        headers = {
            "Accept": "application/graphql-response+json, application/json",
            "X-Forwarded-For": self.address,
            "X-Request-ID": uuid.uuid4().hex,
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if method == "GET":
            headers["X-Apollo-Operation-Name"] = "DashboardRevenue"
        elif kind == "query":
            # nginx may retry a query on another replica; never a mutation (deploy/nginx).
            headers["X-GraphQL-Operation-Type"] = "query"
        return headers

    def _graphql(
        self, flow: str, document: str, variables: dict[str, Any] | None = None, kind: str = "query"
    ) -> dict[str, Any] | None:
        """POSTs one operation; a non-200 status or any error in the body is a failure."""
        body: dict[str, Any] = {"query": document, "variables": variables or {}}
        with self.client.post(
            "/graphql",
            json=body,
            headers=self._headers(kind),
            name=flow,
            context={"kind": kind},
            catch_response=True,
        ) as response:
            return _judge(response)

    def _login(self) -> str | None:
        variables = {"email": EMAIL, "password": PASSWORD}
        data = self._graphql("login", operations.LOGIN, variables, kind="mutation")
        return data["login"]["token"] if data and data.get("login") else None

    def _register_dashboard(self) -> None:
        # Apollo's automatic persisted queries: the text once, then only its hash over GET.
        extensions = {"persistedQuery": {"version": 1, "sha256Hash": operations.DASHBOARD_HASH}}
        body = {
            "query": operations.DASHBOARD,
            "variables": _dashboard_range(),
            "extensions": extensions,
        }
        with self.client.post(
            "/graphql",
            json=body,
            headers=self._headers(),
            name="dashboard (register)",
            catch_response=True,
        ) as response:
            _judge(response)

    @task(4)
    def dashboard(self) -> None:
        """A dashboard panel: a persisted query over GET, cacheable by any CDN or proxy."""
        import orjson

        extensions = {"persistedQuery": {"version": 1, "sha256Hash": operations.DASHBOARD_HASH}}
        params = {
            "operationName": "DashboardRevenue",
            "variables": orjson.dumps(_dashboard_range()).decode(),
            "extensions": orjson.dumps(extensions).decode(),
        }
        with self.client.get(
            "/graphql",
            params=params,
            headers=self._headers(method="GET"),
            name="dashboard (persisted GET)",
            context={"kind": "query"},
            catch_response=True,
        ) as response:
            if _persisted_query_not_found(response):
                # As Apollo clients do: the registry lost the hash (Redis restarted), send the
                # text once more. The protocol working, not a failure.
                response.success()
                self._register_dashboard()
                return
            _judge(response)

    @task(3)
    def analytics_exploration(self) -> None:
        """An analyst slicing the metrics: other measures, dimensions and filters each time."""
        self._graphql(
            "analytics exploration", operations.EXPLORE, {"query": operations.exploration(self.rng)}
        )

    @task(3)
    def orders_paging(self) -> None:
        """A front-end paging through orders: first page, then a few pages on by cursor."""
        after: str | None = None
        for _ in range(self.rng.randint(1, 4)):
            data = self._graphql(
                "orders paging", operations.ORDERS_PAGE, {"first": 25, "after": after}
            )
            if not data:
                return
            info = data["orders"]["pageInfo"]
            if not info["hasNextPage"]:
                return
            after = info["endCursor"]

    @task(3)
    def feature_lookup(self) -> None:
        """Online features for a batch of customers in one round trip."""
        ids = operations.customer_ids(self.rng, self.rng.choice([5, 20, 50]))
        self._graphql("feature lookup", operations.FEATURES, {"ids": ids})

    @task(2)
    def me(self) -> None:
        """The signed-in viewer (the token from login)."""
        self._graphql("login + me", operations.ME)

    @task(1)
    def quality_run(self) -> None:
        """Quality checks on one dataset, end to end: run, results stored, passed or not."""
        variables = {"dataset": self.rng.choice(operations.QUALITY_DATASETS)}
        self._graphql("quality run", operations.QUALITY_RUN, variables, kind="mutation")

    @task(1)
    def export(self) -> None:
        """An export of the ledger end to end: enqueued, run by a worker, polled until done."""
        global _next_export
        if time.monotonic() < _next_export:
            return
        _next_export = time.monotonic() + EXPORT_EVERY_SECONDS
        document = (
            "mutation Export { exportDataset(input: {dataset: LEDGER, format: CSV}) { id status } }"
        )
        data = self._graphql("export", document, kind="mutation")
        if not data or not data.get("exportDataset"):
            return
        job_id = data["exportDataset"]["id"]
        deadline = time.monotonic() + EXPORT_POLL_SECONDS
        while time.monotonic() < deadline:
            job = self._graphql(
                "export (poll)", "query Job($id: ID!) { job(id: $id) { status } }", {"id": job_id}
            )
            state = (job or {}).get("job", {}).get("status")
            if state in {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED", None}:
                return
            time.sleep(0.5)


def _dashboard_range() -> dict[str, str]:
    return {"from": "2025-01-01T00:00:00Z", "to": "2025-07-01T00:00:00Z"}


def _fail(response: ResponseContextManager, message: str) -> None:
    response.failure(message)  # type: ignore[no-untyped-call]


def _persisted_query_not_found(response: ResponseContextManager) -> bool:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    codes = {error.get("extensions", {}).get("code") for error in errors}
    return codes == {"PERSISTED_QUERY_NOT_FOUND"}


def _judge(response: ResponseContextManager) -> dict[str, Any] | None:
    """Marks the response failed unless it is a 200 with data and no errors; returns the data."""
    if response.status_code != 200:
        _fail(response, f"HTTP {response.status_code}: {response.text[:200]}")
        return None
    try:
        body = response.json()
    except ValueError:
        _fail(response, f"not JSON: {response.text[:200]}")
        return None
    if body.get("errors"):
        codes = [e.get("extensions", {}).get("code") for e in body["errors"]]
        _fail(response, f"errors {codes}: {body['errors'][0].get('message', '')[:160]}")
        return None
    response.success()  # type: ignore[no-untyped-call]
    data: dict[str, Any] | None = body.get("data")
    return data
