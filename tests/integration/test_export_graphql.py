"""exportDataset end to end: each format's files parsed back and compared with the rows read
independently from the store (SQLite, and PostgreSQL where marked), RBAC, bad input, audit."""

from __future__ import annotations

import asyncio
import csv
import gzip
import hashlib
import io
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from dataintel.app import create_app
from dataintel.services import Services
from dataintel.services.analytics.planner import AnalyticsQuery
from dataintel.services.export import ExportRequest
from dataintel.services.jobs import JobCancelled
from dataintel.store import tables
from dataintel.store.engine import create_engine
from tests.integration.test_csrf_and_introspection import bearer, token_for
from tests.plugins.app import SettingsFactory, serving

EXPORT = """
mutation Export($input: ExportDatasetInput!) {
  exportDataset(input: $input) { databaseId status }
}
"""
JOB = """
query Job($id: ID!) {
  job(id: $id) {
    status error { code message } result
    files { number fileName contentType bytes sha256 rows compression downloadUrl }
  }
}
"""


class Exporter:
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

    async def export(self, who: str = "engineer", **given: Any) -> dict[str, Any]:
        """Runs an export to its end; the job as GraphQL shows it."""
        started = await self.post(who, EXPORT, input=given)
        assert "errors" not in started, started
        job_id = started["data"]["exportDataset"]["databaseId"]
        deadline = time.monotonic() + 60
        while True:
            job: dict[str, Any] = (await self.post(who, JOB, id=job_id))["data"]["job"]
            if job["status"] not in ("QUEUED", "RUNNING"):
                assert job["status"] == "SUCCEEDED", job
                job["id"] = job_id
                return job
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.05)

    async def files(self, job: dict[str, Any]) -> list[bytes]:
        """Every part's bytes, checked against its size and SHA-256."""
        contents = []
        for file in job["files"]:
            response = await self.client.get(file["downloadUrl"])
            assert response.status_code == 200
            assert len(response.content) == file["bytes"]
            assert hashlib.sha256(response.content).hexdigest() == file["sha256"]
            contents.append(response.content)
        return contents


@pytest.fixture
def export_store_url(seeded_sqlite_url: str) -> str:
    """The store most tests export from: a seeded SQLite copy."""
    return seeded_sqlite_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def both_stores(request: pytest.FixtureRequest, seeded_sqlite_url: str) -> str:
    """For the format tests: a seeded SQLite copy, then a seeded PostgreSQL database."""
    if request.param == "sqlite":
        return seeded_sqlite_url
    url: str = request.getfixturevalue("seeded_postgres_url")
    return url


async def _exporter(
    make_settings: SettingsFactory, store_url: str, tmp_path: Path
) -> AsyncIterator[Exporter]:
    settings = make_settings(
        database_url=store_url,
        export_dir=tmp_path / "exports",
        export_fetch_rows=700,
        jobs_heartbeat_seconds=0.1,
        # Materializing the features on a loaded machine can take longer than the default.
        store_call_timeout_seconds=60,
    )
    tokens = {
        "engineer": await token_for(settings, "engineer@example.test", "data_engineer"),
        "analyst": await token_for(settings, "analyst@example.test", "analyst"),
        "auditor": await token_for(settings, "auditor@example.test", "admin"),
    }
    app = create_app(settings)
    async with serving(app) as client:
        yield Exporter(app, client, tokens)


@pytest.fixture
async def exporter(
    make_settings: SettingsFactory, export_store_url: str, tmp_path: Path
) -> AsyncIterator[Exporter]:
    async for made in _exporter(make_settings, export_store_url, tmp_path):
        yield made


@pytest.fixture
async def store_exporter(
    make_settings: SettingsFactory, both_stores: str, tmp_path: Path
) -> AsyncIterator[Exporter]:
    async for made in _exporter(make_settings, both_stores, tmp_path):
        yield made


async def store_rows(exporter: Exporter, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """Rows read from the store directly, not through the export."""
    engine = create_engine(exporter.app.state.settings.store)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in (await connection.execute(statement)).all()]
    finally:
        await engine.dispose()


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_orders_with_items_as_csv_parts_match_the_store(store_exporter: Exporter) -> None:
    exporter = store_exporter
    orders, items = tables.orders, tables.order_items
    placed_from = datetime(2026, 6, 1, tzinfo=UTC)
    expected = [
        [str(value) if not isinstance(value, datetime) else iso(value) for value in row]
        for row in await store_rows(
            exporter,
            sa.select(
                orders.c.id,
                orders.c.customer_id,
                orders.c.status,
                orders.c.channel,
                orders.c.placed_at,
                orders.c.currency,
                orders.c.total_cents,
                items.c.id,
                items.c.product_id,
                items.c.quantity,
                items.c.unit_price_cents,
            )
            .select_from(orders.outerjoin(items, items.c.order_id == orders.c.id))
            .where(orders.c.status.in_(["paid", "shipped"]), orders.c.placed_at >= placed_from)
            .order_by(orders.c.id, items.c.id),
        )
    ]
    assert len(expected) > 600
    job = await exporter.export(
        dataset="ORDERS",
        format="CSV",
        partRows=250,
        filter={"status": {"in": ["paid", "shipped"]}, "placed_at": {"gte": iso(placed_from)}},
    )
    contents = await exporter.files(job)
    assert len(contents) == -(-len(expected) // 250)
    got: list[list[str]] = []
    for file, content in zip(job["files"], contents, strict=True):
        assert content.count(b"\r\n") == file["rows"] + 1
        lines = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
        assert lines[0][0] == "order_id"
        assert lines[0][-1] == "unit_price_cents"
        got.extend(lines[1:])
        assert file["rows"] == len(lines) - 1
        assert file["contentType"].startswith("text/csv")
    assert got == [[value if value != "None" else "" for value in row] for row in expected]
    assert job["result"]["rows"] == len(expected)


async def test_ledger_as_gzipped_ndjson_keeps_exact_integers_and_utc_times(
    store_exporter: Exporter,
) -> None:
    exporter = store_exporter
    ledger = tables.ledger_entries
    expected = [
        {
            "id": row[0],
            "entry_ref": row[1],
            "order_id": row[2],
            "amount_cents": row[3],
            "booked_at": iso(row[4]),
        }
        for row in await store_rows(
            exporter,
            sa.select(
                ledger.c.id, ledger.c.entry_ref, ledger.c.order_id, ledger.c.amount_cents,
                ledger.c.booked_at,
            ).order_by(ledger.c.id),
        )
    ]  # fmt: skip
    job = await exporter.export(
        "analyst",
        dataset="LEDGER",
        format="NDJSON",
        compression="GZIP",
        columns=["id", "entry_ref", "order_id", "amount_cents", "booked_at"],
    )
    (file,) = job["files"]
    assert file["fileName"].endswith(".ndjson.gz")
    assert file["compression"] == "gzip"
    (content,) = await exporter.files(job)
    lines = gzip.decompress(content).decode().splitlines()
    got = [orjson.loads(line) for line in lines]
    assert got == expected
    assert all(isinstance(item["amount_cents"], int) for item in got)
    assert list(got[0]) == ["id", "entry_ref", "order_id", "amount_cents", "booked_at"]


async def test_customers_as_parquet_have_typed_columns_and_row_groups(
    store_exporter: Exporter,
) -> None:
    exporter = store_exporter
    customers = tables.customers
    expected = await store_rows(
        exporter,
        sa.select(
            customers.c.id, customers.c.email, customers.c.tier, customers.c.signed_up_at
        ).order_by(customers.c.id),
    )
    job = await exporter.export(
        dataset="CUSTOMERS", format="PARQUET", columns=["id", "email", "tier", "signed_up_at"]
    )
    (content,) = await exporter.files(job)
    parquet = pq.ParquetFile(io.BytesIO(content))
    # Written as fetched: one row group per batch of export_fetch_rows (700).
    assert parquet.metadata.num_row_groups == -(-len(expected) // 700)
    table = parquet.read()
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("signed_up_at").type == pa.timestamp("us", tz="UTC")
    got = [tuple(row.values()) for row in table.to_pylist()]
    assert got == expected


async def test_feature_values_as_csv_round_trip_floats(exporter: Exporter) -> None:
    await exporter.services.features.materialize()
    values = tables.feature_values
    expected = await store_rows(
        exporter,
        sa.select(values.c.entity_id, values.c.feature_name, values.c.value_double)
        .where(values.c.entity_type == "customer", values.c.value_double.is_not(None))
        .order_by(values.c.entity_type, values.c.entity_id, values.c.feature_name),
    )
    job = await exporter.export(
        dataset="FEATURE_VALUES",
        format="CSV",
        columns=["entity_id", "feature_name", "value_double"],
        filter={"entity_type": "customer", "value_double": {"isNull": False}},
    )
    (content,) = await exporter.files(job)
    rows = list(csv.reader(io.StringIO(content.decode(), newline="")))[1:]
    assert [(row[0], row[1], float(row[2])) for row in rows] == expected


async def test_analytics_results_export_for_analysts(exporter: Exporter) -> None:
    result = await exporter.services.analytics.query(
        AnalyticsQuery(measures=("revenue", "order_count"), dimensions=("region",))
    )
    expected = [
        [row.dimensions[0].value, *(repr(measure.value) for measure in row.measures)]
        for row in result.rows
    ]
    assert expected
    query = {"measures": ["revenue", "order_count"], "dimensions": ["region"]}
    job = await exporter.export("analyst", dataset="ANALYTICS", format="CSV", analytics=query)
    (content,) = await exporter.files(job)
    lines = list(csv.reader(io.StringIO(content.decode(), newline="")))
    assert lines[0] == ["region", "revenue", "order_count"]
    assert lines[1:] == expected


async def test_an_export_of_no_rows_is_one_part_with_the_header(exporter: Exporter) -> None:
    job = await exporter.export(dataset="LEDGER", format="CSV", filter={"id": {"lt": 0}})
    (content,) = await exporter.files(job)
    assert content == b"id,entry_ref,order_id,amount_cents,currency,booked_at,status\r\n"
    assert job["files"][0]["rows"] == 0


@pytest.mark.parametrize(
    ("given", "code", "field"),
    [
        ({"dataset": "LEDGER", "columns": ["id", "nope"]}, "BAD_USER_INPUT", "columns"),
        ({"dataset": "LEDGER", "columns": ["id", "id"]}, "BAD_USER_INPUT", "columns"),
        ({"dataset": "LEDGER", "filter": {"booked_at": {"gte": "soon"}}}, "BAD_USER_INPUT",
         "filter.booked_at.gte"),
        ({"dataset": "LEDGER", "filter": {"id": {"between": 1}}}, "BAD_USER_INPUT",
         "filter.id.between"),
        ({"dataset": "LEDGER", "filter": {"amount_cents": "12"}}, "BAD_USER_INPUT",
         "filter.amount_cents"),
        ({"dataset": "LEDGER", "filter": [1]}, "BAD_USER_INPUT", "filter"),
        ({"dataset": "LEDGER", "partRows": 0}, "BAD_USER_INPUT", "partRows"),
        ({"dataset": "ANALYTICS"}, "BAD_USER_INPUT", "analytics"),
        ({"dataset": "CUSTOMERS"}, "FORBIDDEN", "dataset"),
        ({"dataset": "ORDERS"}, "FORBIDDEN", "dataset"),
    ],
)  # fmt: skip
async def test_bad_requests_are_refused_naming_the_field(
    exporter: Exporter, given: dict[str, Any], code: str, field: str
) -> None:
    answer = await exporter.post("analyst", EXPORT, input=given)
    assert answer["data"]["exportDataset"] is None
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == code
    assert error["extensions"]["field"] == field
    assert error["message"].startswith(field.split(".")[0])
    # Nothing was enqueued.
    jobs = await exporter.post("analyst", "{ jobs { totalCount } }")
    assert jobs["data"]["jobs"]["totalCount"] == 0


async def test_every_export_is_audited_with_hashes_but_never_the_data(
    exporter: Exporter,
) -> None:
    job = await exporter.export(dataset="CUSTOMERS", format="CSV", columns=["id", "email"])
    (content,) = await exporter.files(job)
    entries = await exporter.post(
        "auditor",
        '{ auditLog(first: 10, filter: {action: ["export.request", "export.complete",'
        ' "export.download"]}) { nodes { action actor target details } } }',
    )
    nodes = entries["data"]["auditLog"]["nodes"]
    assert sorted(node["action"] for node in nodes) == [
        "export.complete", "export.download", "export.request",
    ]  # fmt: skip
    complete = next(node for node in nodes if node["action"] == "export.complete")
    assert complete["details"]["rows"] == job["result"]["rows"]
    assert complete["details"]["parts"][0]["sha256"] == job["files"][0]["sha256"]
    text = orjson.dumps(nodes).decode()
    one_email = content.decode().splitlines()[1].split(",")[1]
    assert "@" in one_email
    assert one_email not in text


async def test_the_same_idempotency_key_returns_the_same_export(exporter: Exporter) -> None:
    given = {"dataset": "LEDGER", "format": "CSV", "idempotencyKey": "ledger-2026-12"}
    first = await exporter.post("engineer", EXPORT, input=given)
    again = await exporter.post("engineer", EXPORT, input=given)
    assert (
        first["data"]["exportDataset"]["databaseId"] == again["data"]["exportDataset"]["databaseId"]
    )


async def test_export_mutations_are_rate_limited_per_viewer(exporter: Exporter) -> None:
    given = {"dataset": "LEDGER", "filter": {"id": {"lt": 0}}}
    answers = [await exporter.post("analyst", EXPORT, input=given) for _ in range(11)]
    assert all("errors" not in answer for answer in answers[:10])
    assert answers[10]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_an_expired_export_loses_its_files_and_its_url_answers_410(
    exporter: Exporter,
) -> None:
    job = await exporter.export(dataset="LEDGER", format="CSV")
    url = job["files"][0]["downloadUrl"]
    assert (await exporter.client.get(url)).status_code == 200
    jobs = exporter.services.jobs
    async with jobs.store._engine.begin() as connection:
        await connection.execute(
            sa.update(tables.jobs)
            .where(tables.jobs.c.id == job["id"])
            .values(expires_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    await jobs.maintain()
    expired = (await exporter.post("engineer", JOB, id=job["id"]))["data"]["job"]
    assert expired["status"] == "EXPIRED"
    assert expired["files"] == []
    assert exporter.services.artifacts.path(job["id"], 1) is None
    gone = await exporter.client.get(url)
    assert gone.status_code == 410


class _CancelAfter:
    """A job context whose cancel arrives after a number of checks."""

    job_id = "11111111-1111-4111-8111-111111111111"
    requested_by = "user:1"
    attempt = 1

    def __init__(self, checks: int) -> None:
        self.checks = checks

    async def report_progress(self, fraction: float) -> None:
        return None

    def cancelled(self) -> bool:
        return self.checks <= 0

    def raise_if_cancelled(self) -> None:
        self.checks -= 1
        if self.checks < 0:
            raise JobCancelled(self.job_id)


async def test_an_interrupted_export_leaves_no_part_behind_after_its_cleanup(
    exporter: Exporter, tmp_path: Path
) -> None:
    service = exporter.services.export
    request = ExportRequest("ledger", "CSV", "NONE", part_rows=1000)
    context = _CancelAfter(checks=3)
    with pytest.raises(JobCancelled):
        await service.run(context, request.to_params())
    directory = tmp_path / "exports" / context.job_id
    # Three batches of 700 went through: parts 1 and 2 were complete and in place, the third
    # was begun; its temporary file is gone and it was never put in place.
    assert sorted(path.name for path in directory.iterdir()) == ["part-00001", "part-00002"]
    await service.cleanup(context.job_id)
    assert not directory.exists()


async def test_erased_subjects_are_left_out_of_exports(exporter: Exporter) -> None:
    # What an erasure records (tests/services/test_privacy.py runs the real one).
    erased = 3
    engine = create_engine(exporter.app.state.settings.store)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(tables.export_suppressions).values(
                    customer_id=erased, subject_request_id=1, suppressed_at=datetime.now(UTC)
                )
            )
    finally:
        await engine.dispose()
    orders = tables.orders
    kept = await store_rows(
        exporter,
        sa.select(orders.c.id, orders.c.customer_id)
        .where(orders.c.customer_id != erased)
        .order_by(orders.c.id),
    )
    job = await exporter.export(dataset="ORDERS", format="CSV", columns=["order_id", "customer_id"])
    rows = [line.split(",") for part in await exporter.files(job) for line in part.decode().split()]
    exported = sorted({(int(row[0]), int(row[1])) for row in rows if row[0] != "order_id"})
    assert exported == kept
    job = await exporter.export(dataset="CUSTOMERS", format="CSV", columns=["id"])
    ids = {line for part in await exporter.files(job) for line in part.decode().split()}
    assert str(erased) not in ids
    assert "4" in ids
