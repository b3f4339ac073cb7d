"""job, jobs and cancelJob over GraphQL, and job files downloaded by signed URL (embedded
mode: no Redis, the server runs its jobs itself)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.services import Services
from dataintel.services.artifacts import StoredPart
from dataintel.services.jobs import Job, JobStatus
from tests.integration.test_csrf_and_introspection import bearer, token_for
from tests.plugins.app import SettingsFactory, serving

JOB = """
query Job($id: ID!) {
  job(id: $id) {
    id databaseId kind status progress attempts maxAttempts requestedBy
    error { code message } result
    files { number fileName contentType bytes sha256 rows downloadUrl urlExpiresAt }
  }
}
"""
JOBS = """
query Jobs($first: Int, $after: String, $filter: JobFilter) {
  jobs(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node { databaseId status kind } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancelJob(id: $id) { databaseId status cancelRequested } }"
NODE = "query Node($id: ID!) { node(id: $id) { id ... on Job { databaseId kind } } }"


def job_global_id(job_id: str) -> str:
    return base64.b64encode(f"Job:{job_id}".encode()).decode()


class Gateway:
    def __init__(self, app: Starlette, client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.app = app
        self.client = client
        self.tokens = tokens

    @property
    def services(self) -> Services:
        services: Services = self.app.state.runtime.services
        return services

    async def post(self, who: str, document: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": document, "variables": variables},
            headers=bearer(self.tokens[who]),
        )
        body: dict[str, Any] = response.json()
        return body

    def user(self, who: str) -> str:
        return self.tokens[f"{who}:name"]


@pytest.fixture
async def gateway(make_settings: SettingsFactory, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = make_settings(export_dir=tmp_path / "exports", jobs_heartbeat_seconds=0.05)
    tokens: dict[str, str] = {}
    for who, role in (("ana", "analyst"), ("bob", "analyst"), ("root", "admin")):
        tokens[who] = await token_for(settings, f"{who}@example.test", role)
    app = create_app(settings)
    async with serving(app) as client:
        gateway = Gateway(app, client, tokens)
        for who in ("ana", "bob", "root"):
            viewer = await gateway.post(who, "{ me { user { databaseId } } }")
            tokens[f"{who}:name"] = f"user:{viewer['data']['me']['user']['databaseId']}"
        yield gateway


async def finished(gateway: Gateway, job_id: str) -> Job:
    deadline = time.monotonic() + 30
    while True:
        job = await gateway.services.jobs.get(job_id)
        assert job is not None
        if job.is_terminal:
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.02)


async def test_a_viewer_reads_and_lists_only_their_own_jobs_and_an_admin_all(
    gateway: Gateway,
) -> None:
    jobs = gateway.services.jobs
    mine = [await jobs.enqueue("probe", {"steps": 1}, gateway.user("ana")) for _ in range(3)]
    theirs = await jobs.enqueue("probe", {"steps": 1}, gateway.user("bob"))
    for job in [*mine, theirs]:
        await finished(gateway, job.id)

    found = (await gateway.post("ana", JOB, id=mine[0].id))["data"]["job"]
    assert found["databaseId"] == mine[0].id
    assert found["status"] == "SUCCEEDED"
    assert found["progress"] == 1.0
    assert found["result"] == {"seconds": 0.0, "attempt": 1}
    assert found["files"] == []
    # The global id names the job too, and node() refetches it.
    by_global = (await gateway.post("ana", JOB, id=found["id"]))["data"]["job"]
    assert by_global["databaseId"] == mine[0].id
    node = (await gateway.post("ana", NODE, id=found["id"]))["data"]["node"]
    assert node == {"id": found["id"], "databaseId": mine[0].id, "kind": "probe"}

    hidden = await gateway.post("ana", JOB, id=theirs.id)
    assert hidden["data"]["job"] is None
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    other_node = await gateway.post("ana", NODE, id=job_global_id(theirs.id))
    assert other_node["data"]["node"] is None

    first = (await gateway.post("ana", JOBS, first=2))["data"]["jobs"]
    assert first["totalCount"] == 3
    assert [edge["node"]["databaseId"] for edge in first["edges"]] == [mine[2].id, mine[1].id]
    rest = (await gateway.post("ana", JOBS, first=2, after=first["pageInfo"]["endCursor"]))["data"][
        "jobs"
    ]
    assert [edge["node"]["databaseId"] for edge in rest["edges"]] == [mine[0].id]
    assert rest["pageInfo"]["hasNextPage"] is False

    everyone = (await gateway.post("root", JOBS, first=10))["data"]["jobs"]
    assert everyone["totalCount"] == 4
    admin_reads = (await gateway.post("root", JOB, id=theirs.id))["data"]["job"]
    assert admin_reads["requestedBy"] == gateway.user("bob")
    filtered = await gateway.post("ana", JOBS, filter={"status": ["FAILED"]})
    assert filtered["data"]["jobs"]["totalCount"] == 0


async def test_cancel_job_cancels_own_jobs_only(gateway: Gateway) -> None:
    jobs = gateway.services.jobs
    running = await jobs.enqueue("probe", {"seconds": 60, "steps": 600}, gateway.user("ana"))
    other = await jobs.enqueue("probe", {"seconds": 60, "steps": 600}, gateway.user("bob"))
    denied = await gateway.post("ana", CANCEL, id=other.id)
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    answer = (await gateway.post("ana", CANCEL, id=running.id))["data"]["cancelJob"]
    assert answer["databaseId"] == running.id
    assert answer["status"] in ("CANCELLED", "RUNNING")
    assert (await finished(gateway, running.id)).status is JobStatus.CANCELLED
    assert (await gateway.post("root", CANCEL, id=other.id))["data"]["cancelJob"] is not None
    assert (await finished(gateway, other.id)).status is JobStatus.CANCELLED
    malformed = await gateway.post("ana", JOB, id="not-a-job")
    assert malformed["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def succeeded_with_file(gateway: Gateway, who: str, content: bytes) -> Job:
    """A SUCCEEDED job whose result lists one stored file, as a kind that writes files makes."""
    services = gateway.services
    job = await services.jobs.enqueue("probe", {"steps": 1}, gateway.user(who))
    await finished(gateway, job.id)
    with services.artifacts.write_part(job.id, 1) as sink:
        sink.write(content)
    part = StoredPart(
        1, "orders-part-00001.csv", "text/csv", len(content), sink.hexdigest(), rows=2
    )
    store = services.jobs.store
    now = datetime.now(UTC)
    # The test stands in for the run: it takes the finished job back and ends it with a file.
    import sqlalchemy as sa

    from dataintel.store import tables

    async with store._engine.begin() as connection:
        await connection.execute(
            sa.update(tables.jobs)
            .where(tables.jobs.c.id == job.id)
            .values(status="RUNNING", claim="test")
        )
    assert await store.finish(
        job.id, "test", JobStatus.SUCCEEDED, now, result={"parts": [part.to_json()]}
    )
    found = await services.jobs.get(job.id)
    assert found is not None
    return found


async def test_a_job_file_downloads_by_its_signed_url_with_ranges_and_etag(
    gateway: Gateway,
) -> None:
    content = b"id,total_cents\r\n1,1999\r\n2,250\r\n"
    job = await succeeded_with_file(gateway, "ana", content)
    found = (await gateway.post("ana", JOB, id=job.id))["data"]["job"]
    (file,) = found["files"]
    assert file["sha256"] == hashlib.sha256(content).hexdigest()
    assert file["bytes"] == len(content)
    url = file["downloadUrl"]
    assert urlsplit(url).path == f"/exports/{job.id}/parts/1"

    whole = await gateway.client.get(url)
    assert whole.status_code == 200
    assert whole.content == content
    assert whole.headers["etag"] == f'"{file["sha256"]}"'
    assert whole.headers["content-type"].startswith("text/csv")
    assert 'filename="orders-part-00001.csv"' in whole.headers["content-disposition"]

    ranged = await gateway.client.get(url, headers={"Range": "bytes=3-9"})
    assert ranged.status_code == 206
    assert ranged.content == content[3:10]
    assert ranged.headers["content-range"] == f"bytes 3-9/{len(content)}"
    tail = await gateway.client.get(url, headers={"Range": "bytes=-5"})
    assert tail.content == content[-5:]
    unchanged = await gateway.client.get(url, headers={"If-None-Match": whole.headers["etag"]})
    assert unchanged.status_code == 304

    # Every download (not the 304) is in the audit log with the hash, never the content.
    entries = await gateway.post(
        "root",
        '{ auditLog(first: 20, filter: {action: ["probe.download"]}) { nodes { details } } }',
    )
    details = [node["details"] for node in entries["data"]["auditLog"]["nodes"]]
    assert len(details) == 3
    assert all(item["sha256"] == file["sha256"] for item in details)


async def test_a_tampered_or_expired_url_is_refused_with_a_clear_403(gateway: Gateway) -> None:
    job = await succeeded_with_file(gateway, "ana", b"a,b\r\n")
    found = (await gateway.post("ana", JOB, id=job.id))["data"]["job"]
    url = found["files"][0]["downloadUrl"]
    query = parse_qs(urlsplit(url).query)
    path = urlsplit(url).path

    other_part = await gateway.client.get(url.replace("/parts/1", "/parts/2"))
    assert other_part.status_code == 403
    assert "signature" in other_part.json()["error"]["message"]
    longer = int(query["expires"][0]) + 3600
    stretched = await gateway.client.get(
        f"{path}?expires={longer}&signature={query['signature'][0]}"
    )
    assert stretched.status_code == 403
    assert stretched.json()["error"]["code"] == "FORBIDDEN"
    unsigned = await gateway.client.get(path)
    assert unsigned.status_code == 403
    assert "lacks" in unsigned.json()["error"]["message"]

    signer = gateway.services.downloads
    past = datetime(2020, 1, 1, tzinfo=UTC)
    expired = signer.sign(job.id, 1, now=past)
    refused = await gateway.client.get(expired.url)
    assert refused.status_code == 403
    assert "expired" in refused.json()["error"]["message"]
    # A fresh URL for the same file works without running anything again.
    again = (await gateway.post("ana", JOB, id=job.id))["data"]["job"]["files"][0]
    assert (await gateway.client.get(again["downloadUrl"])).status_code == 200
