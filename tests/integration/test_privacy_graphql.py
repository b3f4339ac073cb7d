"""GDPR subject requests through the real app: the job system runs the work, the package is
downloaded by its signed URL, and an erasure leaves no replica answering the old name."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.services.auth import OPERATOR, Actor, NewUser, scopes_for
from dataintel.services.features import SqlFeatureService, load_catalog
from dataintel.services.privacy import ERASURE_KIND, SqlSubjectRequestService
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from tests.plugins.app import SettingsFactory, serving
from tests.plugins.faults import runtime_of

SECRET = "privacy-test-secret-" + "x" * 28
PASSWORD = "correct horse battery staple"
SUBJECT = 3
POLL_SECONDS = 60.0

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { token }
}
"""
CREATE = """
mutation Create($input: CreateSubjectRequestInput!) {
  createSubjectRequest(input: $input) { id status customerId dueAt receivedAt }
}
"""
VERIFY = "mutation Verify($id: ID!) { verifySubject(id: $id) { id status jobId } }"
DENY = 'mutation Deny($id: ID!) { denySubjectRequest(id: $id, reason: "no proof") { status } }'
REQUEST = """
query Request($id: ID!) {
  subjectRequest(id: $id) {
    id type status error
    datasets { dataset rows masked deleted retained legalBasis }
    cachesInvalidated
    package { file bytes sha256 downloadUrl urlExpiresAt }
  }
}
"""
CUSTOMER = """
query Customer($id: ID!) {
  customer(id: $id) { name email features(names: ["order_count"]) { status } }
}
"""


@dataclass
class Client:
    """One app instance, a client of it, and an officer's token."""

    app: Starlette
    http: httpx.AsyncClient
    token: str = ""

    async def post(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"} if self.token else {},
        )
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> Any:
        body = await self.post(query, **variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def sign_in(self, email: str, *roles: str) -> str:
        services = runtime_of(self.app).services
        await services.auth.create_user(OPERATOR, NewUser(email, None, PASSWORD, roles))
        self.token = ""
        data = await self.data(LOGIN, email=email, password=PASSWORD)
        token: str = data["login"]["token"]
        self.token = token
        return token

    async def finished(self, request_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            found: dict[str, Any] = (await self.data(REQUEST, id=request_id))["subjectRequest"]
            if found["status"] not in ("RECEIVED", "VERIFIED", "IN_PROGRESS"):
                return found
            assert time.monotonic() < deadline, f"still {found['status']}"
            # A short pause between polls, bounded by the deadline above.
            await asyncio.sleep(0.05)


async def materialized(settings: Settings) -> None:
    engine = create_engine(settings.store)
    try:
        await SqlFeatureService(engine, load_catalog()).materialize()
    finally:
        await engine.dispose()


@pytest.fixture
async def officer(make_settings: SettingsFactory) -> AsyncIterator[Client]:
    settings = make_settings(jwt_secret=SECRET, jobs_queue="embedded")
    app = create_app(settings)
    async with serving(app) as http:
        client = Client(app, http)
        await client.sign_in("officer@example.test", "privacy_officer")
        yield client


async def submitted(client: Client, kind: str, subject: dict[str, Any]) -> str:
    created = await client.data(
        CREATE, input={"type": kind, "subject": subject, "reason": "Letter"}
    )
    request = created["createSubjectRequest"]
    assert request["status"] == "RECEIVED"
    verified = (await client.data(VERIFY, id=request["id"]))["verifySubject"]
    assert verified["status"] in ("VERIFIED", "IN_PROGRESS", "COMPLETED")
    assert verified["jobId"]
    request_id: str = request["id"]
    return request_id


async def test_an_access_request_is_packaged_and_downloaded(officer: Client) -> None:
    services = runtime_of(officer.app).services
    async with runtime_of(officer.app).engine.connect() as connection:
        email = await connection.scalar(
            sa.select(tables.customers.c.email).where(tables.customers.c.id == SUBJECT)
        )
    request_id = await submitted(officer, "ACCESS", {"email": email})
    done = await officer.finished(request_id)
    assert done["status"] == "COMPLETED", done
    # The request completes inside its job, which succeeds just after: the URL is signed
    # once the job has, so a poll may see COMPLETED a moment before the URL.
    deadline = time.monotonic() + POLL_SECONDS
    while done["package"]["downloadUrl"] is None:
        assert time.monotonic() < deadline, done
        await asyncio.sleep(0.05)
        done = (await officer.data(REQUEST, id=request_id))["subjectRequest"]
    package = done["package"]
    response = await officer.http.get(package["downloadUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        manifest = orjson.loads(archive.read("manifest.json"))
        customers = orjson.loads(archive.read("customers.json"))["rows"]
        orders = orjson.loads(archive.read("orders.json"))["rows"]
    assert manifest["subject"] == {"customerId": SUBJECT}
    assert [row["id"] for row in customers] == [SUBJECT]
    assert {row["customer_id"] for row in orders} == {SUBJECT}
    rows = {item["dataset"]: item["rows"] for item in done["datasets"]}
    assert rows["orders"] == len(orders)
    tampered = package["downloadUrl"].replace("signature=", "signature=x")
    assert (await officer.http.get(tampered)).status_code == 403
    assert (await services.audit.verify()).intact


async def test_bad_input_names_the_field(officer: Client) -> None:
    unknown = await officer.post(
        CREATE, input={"type": "ERASURE", "subject": {"customerId": "999999"}, "reason": "r"}
    )
    [error] = unknown["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["field"] == "subject.customerId"
    both = await officer.post(
        CREATE,
        input={"type": "ACCESS", "subject": {"customerId": "1", "email": "a@b.c"}, "reason": "r"},
    )
    assert both["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert both["errors"][0]["extensions"]["field"] == "subject"
    created = await officer.data(
        CREATE, input={"type": "ACCESS", "subject": {"customerId": "1"}, "reason": "r"}
    )
    request_id = created["createSubjectRequest"]["id"]
    assert (await officer.data(DENY, id=request_id))["denySubjectRequest"]["status"] == "DENIED"
    again = await officer.post(VERIFY, id=request_id)
    assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert again["errors"][0]["extensions"]["field"] == "id"
    missing = await officer.post(REQUEST, id="424242")
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_analysts_may_not_handle_subject_requests(officer: Client) -> None:
    await officer.sign_in("analyst@example.test", "analyst")
    denied = await officer.post(
        CREATE, input={"type": "ACCESS", "subject": {"customerId": "1"}, "reason": "r"}
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.redis
async def test_after_an_erasure_no_replica_answers_the_old_name_or_email(
    make_settings: SettingsFactory, redis_url: str
) -> None:
    settings = make_settings(jwt_secret=SECRET, redis_url=redis_url, jobs_queue="embedded")
    await materialized(settings)
    async with AsyncExitStack() as stack:
        replicas = []
        for _ in range(2):
            app = create_app(settings)
            replicas.append(Client(app, await stack.enter_async_context(serving(app))))
        first, second = replicas
        await first.sign_in("officer@example.test", "privacy_officer")
        second.token = first.token
        before = [
            (await replica.data(CUSTOMER, id=str(SUBJECT)))["customer"] for replica in replicas
        ]
        # Read twice: the second answer comes from the caches (response, entity, features).
        for replica in replicas:
            assert (await replica.data(CUSTOMER, id=str(SUBJECT)))["customer"] == before[0]
        assert before[0]["features"] == [{"status": "PRESENT"}]
        old_name, old_email = before[0]["name"], before[0]["email"]

        request_id = await submitted(first, "ERASURE", {"customerId": str(SUBJECT)})
        done = await first.finished(request_id)
        assert done["status"] == "COMPLETED", done
        assert done["cachesInvalidated"] is True
        report = {item["dataset"]: item for item in done["datasets"]}
        assert report["ledger_entries"]["legalBasis"] == "legal_obligation"
        assert report["ledger_entries"]["retained"] > 0

        for replica in replicas:
            after = (await replica.data(CUSTOMER, id=str(SUBJECT)))["customer"]
            assert after["name"] == "[erased]"
            assert after["email"] != old_email
            assert after["email"].startswith("hmac:")
            assert after["features"] == [{"status": "NOT_FOUND"}]
            text = orjson.dumps(await replica.post(CUSTOMER, id=str(SUBJECT))).decode()
            assert old_name not in text
            assert old_email not in text
        assert (await runtime_of(first.app).services.audit.verify()).intact


async def test_a_job_that_gives_up_fails_its_request(officer: Client) -> None:
    services = runtime_of(officer.app).services
    created = await officer.data(
        CREATE, input={"type": "ERASURE", "subject": {"customerId": "2"}, "reason": "r"}
    )
    request_id = int(created["createSubjectRequest"]["id"])
    # Verified without the job system, so that the job below is the request's only one.
    requests = SqlSubjectRequestService(runtime_of(officer.app).platform.store, services.audit)
    actor = Actor("1", frozenset({"admin"}), scopes_for(["admin"]))
    await requests.verify(actor, request_id)
    job, _ = await services.jobs.store.insert(
        kind=ERASURE_KIND,
        params={"subjectRequestId": request_id},
        requested_by="user:1",
        max_attempts=1,
        idempotency_key=None,
        request_id=None,
        now=datetime.now(UTC),
    )
    kind = services.jobs.kinds.get(ERASURE_KIND)
    assert kind is not None
    assert kind.cleanup is not None
    await kind.cleanup(job.id)
    failed = (await officer.data(REQUEST, id=str(request_id)))["subjectRequest"]
    assert failed["status"] == "FAILED"
    assert "QUEUED" in failed["error"]
    # A request that ended stays as it is.
    await kind.cleanup(job.id)
    assert (await officer.data(REQUEST, id=str(request_id)))["subjectRequest"] == failed
    assert (await services.audit.verify()).intact
