"""Subject requests against the seeded store: access packages, erasure, states, deadlines, audit.

Expected rows are read with plain selects written here, never with the privacy map's own
conditions. Each store test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import zipfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError, ForbiddenError, NotFoundError
from dataintel.services.artifacts import FilesystemArtifactStorage
from dataintel.services.audit import SqlAuditService
from dataintel.services.auth import Actor, scopes_for
from dataintel.services.features import SqlFeatureService, load_catalog
from dataintel.services.jobs import JobCancelled, JobFailure
from dataintel.services.privacy import (
    NewSubjectRequest,
    PrivacyMapError,
    PrivacyWork,
    RequestLimits,
    SqlSubjectRequestService,
    keyed_hash,
    load_privacy_map,
)
from dataintel.services.privacy.privacy_map import build_privacy_map
from dataintel.services.privacy.requests import add_months
from dataintel.services.privacy.work import ReplicaInvalidator
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine

KEY = b"k" * 32
OFFICER = Actor("7", frozenset({"privacy_officer"}), scopes_for(["privacy_officer"]), "req-1")
ANALYST = Actor("8", frozenset({"analyst"}), scopes_for(["analyst"]))
SUBJECT = 3
"""A seeded customer with orders, events and (once materialized) features."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded_url(request: pytest.FixtureRequest) -> str:
    fixture = "seeded_sqlite_url" if request.param == "sqlite" else "seeded_postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def engine(seeded_url: str) -> AsyncIterator[AsyncEngine]:
    made = create_engine(Settings(database_url=seeded_url).store)
    await SqlFeatureService(made, load_catalog()).materialize()
    try:
        yield made
    finally:
        await made.dispose()


@dataclass(slots=True)
class Context:
    """The job system's context, run in the test's own task."""

    job_id: str = "job-1"
    requested_by: str = "user:7"
    progress: list[float] = field(default_factory=list)
    stop: bool = False

    async def report_progress(self, fraction: float) -> None:
        self.progress.append(fraction)

    def cancelled(self) -> bool:
        return self.stop

    def raise_if_cancelled(self) -> None:
        if self.stop:
            raise JobCancelled


@dataclass(slots=True)
class Gdpr:
    engine: AsyncEngine
    audit: SqlAuditService
    requests: SqlSubjectRequestService
    work: PrivacyWork


@pytest.fixture
def gdpr(engine: AsyncEngine, tmp_path: Path) -> Gdpr:
    audit = SqlAuditService(engine)
    requests = SqlSubjectRequestService(engine, audit)
    work = PrivacyWork(
        engine,
        requests,
        load_privacy_map(),
        KEY,
        ReplicaInvalidator(engine, None),
        FilesystemArtifactStorage(tmp_path / "exports"),
    )
    return Gdpr(engine, audit, requests, work)


async def verified(gdpr: Gdpr, kind: str, customer_id: int = SUBJECT) -> int:
    record = await gdpr.requests.create(
        OFFICER, NewSubjectRequest(kind, customer_id, None, "Asked by letter")
    )
    await gdpr.requests.verify(OFFICER, record.id)
    return record.id


async def rows_of(engine: AsyncEngine, statement: sa.Select[Any]) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return [dict(row._mapping) for row in (await connection.execute(statement)).all()]


async def expected_rows(engine: AsyncEngine, customer_id: int) -> dict[str, list[dict[str, Any]]]:
    """The subject's rows per dataset, by plain selects."""
    t = tables
    order_ids = sa.select(t.orders.c.id).where(t.orders.c.customer_id == customer_id)
    statements = {
        "customers": sa.select(t.customers).where(t.customers.c.id == customer_id),
        "orders": sa.select(t.orders).where(t.orders.c.customer_id == customer_id),
        "order_items": sa.select(t.order_items).where(t.order_items.c.order_id.in_(order_ids)),
        "ledger_entries": sa.select(t.ledger_entries).where(
            t.ledger_entries.c.order_id.in_(order_ids)
        ),
        "events": sa.select(t.events).where(t.events.c.customer_id == customer_id),
        "feature_values": sa.select(t.feature_values).where(
            t.feature_values.c.entity_type == "customer",
            t.feature_values.c.entity_id == str(customer_id),
        ),
    }
    found = {}
    for name, statement in statements.items():
        rows = await rows_of(engine, statement)
        found[name] = [
            {
                str(column): value.isoformat() if isinstance(value, datetime) else value
                for column, value in row.items()
            }
            for row in rows
        ]
    return found


def _key(row: Mapping[str, Any]) -> str:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


# --- The privacy map ---------------------------------------------------------------------


def test_the_built_in_map_covers_every_demo_table_with_personal_data() -> None:
    privacy_map = load_privacy_map()
    names = [dataset.name for dataset in privacy_map.datasets]
    assert set(names) == {
        "customers",
        "orders",
        "order_items",
        "ledger_entries",
        "events",
        "feature_values",
    }
    # Rows linked through orders come before orders, which an erasure may change.
    assert names.index("order_items") < names.index("orders")
    ledger = privacy_map.dataset("ledger_entries")
    assert ledger is not None
    assert ledger.retention is not None
    assert ledger.retention.basis == "legal_obligation"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("datasets: [{name: a, table: nope, subject: {column: id}, erasure: delete}]", "nope"),
        (
            "datasets: [{name: a, table: customers, subject: {column: idx}, erasure: delete}]",
            "no column 'idx'",
        ),
        (
            "datasets: [{name: a, table: customers, subject: {column: id}, erasure: mask,"
            " columns: {email: 'null'}}]",
            "NOT NULL",
        ),
        (
            "datasets: [{name: a, table: customers, subject: {column: id}, erasure: mask,"
            " columns: {country: hmac}}]",
            "cannot hold an hmac",
        ),
        (
            "datasets: [{name: a, table: customers, subject: {column: id}, erasure: mask,"
            " columns: {country: redact}}]",
            "longer than column 'country'",
        ),
        (
            "datasets: [{name: a, table: orders, subject: {column: id}, erasure: retain}]",
            "legalBasis",
        ),
        (
            "datasets: [{name: a, table: orders, subject: {column: id, through: b},"
            " erasure: delete}]",
            "'b', which is not mapped",
        ),
        ("datasets: [{name: a, table: orders, subject: {column: id}, erasure: shred}]", "erasure"),
        ("datasets: [", "not valid YAML"),
        (
            "datasets: [{name: a, table: customers, subject: {column: id}, erasure: delete},"
            " {name: a, table: customers, subject: {column: id}, erasure: delete}]",
            "dataset 'a' is declared twice",
        ),
    ],
)
def test_a_bad_map_is_one_line_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(PrivacyMapError) as raised:
        build_privacy_map([(text, "custom.yaml")])
    message = str(raised.value)
    assert problem in message
    assert "custom.yaml" in message


def test_a_file_replaces_built_in_datasets_by_name(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "datasets:\n"
        "  - {name: events, table: events, subject: {column: customer_id}, erasure: delete}\n"
    )
    events = load_privacy_map(path).dataset("events")
    assert events is not None
    assert events.erasure == "delete"


# --- Access ------------------------------------------------------------------------------


async def test_the_access_package_holds_exactly_the_subjects_rows(gdpr: Gdpr) -> None:
    request_id = await verified(gdpr, "ACCESS")
    context = Context()
    result = await gdpr.work.run_access(context, {"subjectRequestId": request_id})
    expected = await expected_rows(gdpr.engine, SUBJECT)
    assert all(expected[name] for name in expected), "the subject has rows in every dataset"
    path = gdpr.work.storage.path("job-1", result["package"]["part"])
    assert path is not None
    content = await asyncio.to_thread(path.read_bytes)
    assert result["parts"][0]["sha256"] == hashlib.sha256(content).hexdigest()
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        manifest = orjson.loads(archive.read("manifest.json"))
        files = {name: archive.read(name) for name in archive.namelist()}
    assert manifest["subject"] == {"customerId": SUBJECT}
    listed = {item["dataset"]: item for item in manifest["datasets"]}
    assert set(listed) == set(expected)
    for name, rows in expected.items():
        data = files[f"{name}.json"]
        packaged = orjson.loads(data)["rows"]
        assert sorted(map(_key, packaged)) == sorted(map(_key, rows)), name
        assert listed[name]["rows"] == len(rows)
        assert listed[name]["sha256"] == hashlib.sha256(data).hexdigest()
    assert result["package"]["sha256"] == hashlib.sha256(content).hexdigest()
    assert context.progress == sorted(context.progress)
    record = await gdpr.requests.get(OFFICER, request_id)
    assert record.status == "COMPLETED"


async def test_no_other_subjects_rows_reach_the_package(gdpr: Gdpr) -> None:
    request_id = await verified(gdpr, "ACCESS")
    await gdpr.work.run_access(Context(), {"subjectRequestId": request_id})
    path = gdpr.work.storage.path("job-1", 1)
    assert path is not None
    with zipfile.ZipFile(path) as archive:
        customers = orjson.loads(archive.read("customers.json"))["rows"]
        orders = orjson.loads(archive.read("orders.json"))["rows"]
        events = orjson.loads(archive.read("events.json"))["rows"]
    assert [row["id"] for row in customers] == [SUBJECT]
    assert {row["customer_id"] for row in orders} == {SUBJECT}
    assert {row["customer_id"] for row in events} == {SUBJECT}


# --- Erasure -----------------------------------------------------------------------------


async def test_erasure_applies_each_strategy_and_reports_retention(gdpr: Gdpr) -> None:
    engine = gdpr.engine
    before = await expected_rows(engine, SUBJECT)
    others_before = await rows_of(
        engine, sa.select(tables.customers).where(tables.customers.c.id != SUBJECT)
    )
    request_id = await verified(gdpr, "ERASURE")
    result = await gdpr.work.run_erasure(Context(), {"subjectRequestId": request_id})
    report = {item["dataset"]: item for item in result["datasets"]}

    (customer,) = await rows_of(
        engine, sa.select(tables.customers).where(tables.customers.c.id == SUBJECT)
    )
    original = before["customers"][0]
    assert customer["email"] == keyed_hash(KEY, original["email"])  # hmac
    assert customer["name"] == "[erased]"  # redact
    assert customer["country"] == "ZZ"  # redact with the column's own value
    assert customer["tier"] == original["tier"]  # not mapped: kept
    assert report["customers"]["masked"] == 1

    event_ids = [row["id"] for row in before["events"]]
    events = await rows_of(
        engine, sa.select(tables.events).where(tables.events.c.id.in_(event_ids))
    )
    assert len(events) == len(event_ids)
    assert all(row["customer_id"] is None for row in events)  # null
    assert {row["session_id"] for row in events} == {
        keyed_hash(KEY, row["session_id"]) for row in before["events"]
    }
    assert report["events"]["masked"] == len(event_ids)

    features = await expected_rows(engine, SUBJECT)
    assert features["feature_values"] == []  # delete
    assert report["feature_values"]["deleted"] == len(before["feature_values"])

    for name in ("orders", "order_items", "ledger_entries"):
        assert report[name]["retained"] == len(before[name]) > 0
        assert report[name]["legalBasis"] == "legal_obligation"
        assert report[name]["masked"] == report[name]["deleted"] == 0
        assert features[name] == before[name], f"{name} is kept unchanged"

    others_after = await rows_of(
        engine, sa.select(tables.customers).where(tables.customers.c.id != SUBJECT)
    )
    assert others_after == others_before
    record = await gdpr.requests.get(OFFICER, request_id)
    assert record.status == "COMPLETED"


async def test_a_second_erasure_changes_nothing(gdpr: Gdpr) -> None:
    first = await verified(gdpr, "ERASURE")
    await gdpr.work.run_erasure(Context(), {"subjectRequestId": first})
    async with gdpr.engine.connect() as connection:
        snapshot = {
            table.name: sorted(map(repr, (await connection.execute(sa.select(table))).all()))
            for table in tables.DEMO_TABLES
        }
    second = await verified(gdpr, "ERASURE")
    result = await gdpr.work.run_erasure(Context(), {"subjectRequestId": second})
    assert sum(item["masked"] + item["deleted"] for item in result["datasets"]) == 0
    async with gdpr.engine.connect() as connection:
        for table in tables.DEMO_TABLES:
            rows = sorted(map(repr, (await connection.execute(sa.select(table))).all()))
            assert rows == snapshot[table.name], table.name


async def test_an_erased_subject_is_suppressed_from_exports(gdpr: Gdpr) -> None:
    privacy_map = gdpr.work.privacy_map
    condition = privacy_map.suppressed("orders")
    assert condition is not None
    statement = sa.select(tables.orders.c.customer_id).where(condition)
    assert SUBJECT in {row["customer_id"] for row in await rows_of(gdpr.engine, statement)}
    await gdpr.work.run_erasure(Context(), {"subjectRequestId": await verified(gdpr, "ERASURE")})
    exported = {row["customer_id"] for row in await rows_of(gdpr.engine, statement)}
    assert SUBJECT not in exported
    assert exported
    items = privacy_map.suppressed("order_items")
    assert items is not None
    exported_items = await rows_of(gdpr.engine, sa.select(tables.order_items).where(items))
    subject_orders = {
        row["id"]
        for row in await rows_of(
            gdpr.engine, sa.select(tables.orders.c.id).where(tables.orders.c.customer_id == SUBJECT)
        )
    }
    assert not {row["order_id"] for row in exported_items} & subject_orders
    assert privacy_map.suppressed("products") is None


async def test_erasure_bumps_the_subjects_cache_tags(gdpr: Gdpr) -> None:
    from dataintel.cache.store_tags import bumped_since

    await gdpr.work.run_erasure(Context(), {"subjectRequestId": await verified(gdpr, "ERASURE")})
    _, bumped = await bumped_since(gdpr.engine, 0)
    assert {
        f"customer:{SUBJECT}",
        "features:customer",
        "dataset:customers",
        "dataset:events",
    } <= set(bumped)


# --- States, deadlines, audit ------------------------------------------------------------


async def test_a_request_moves_through_its_states_with_one_audit_entry_each(gdpr: Gdpr) -> None:
    (customer,) = await rows_of(
        gdpr.engine, sa.select(tables.customers).where(tables.customers.c.id == 5)
    )
    # Found by email, whatever its case.
    record = await gdpr.requests.create(
        OFFICER, NewSubjectRequest("ERASURE", None, customer["email"].upper(), "By email")
    )
    assert (record.status, record.customer_id) == ("RECEIVED", 5)
    personal = [customer["email"], customer["name"]]
    await gdpr.requests.verify(OFFICER, record.id)
    await gdpr.work.run_erasure(Context(), {"subjectRequestId": record.id})
    log = tables.audit_log
    entries = await rows_of(
        gdpr.engine,
        sa.select(log).where(log.c.target == f"subject_request:{record.id}").order_by(log.c.id),
    )
    moves = [
        (orjson.loads(entry["details"])["from"], orjson.loads(entry["details"])["to"])
        for entry in entries
    ]
    assert moves == [
        (None, "RECEIVED"),
        ("RECEIVED", "VERIFIED"),
        ("VERIFIED", "IN_PROGRESS"),
        ("IN_PROGRESS", "COMPLETED"),
    ]
    assert orjson.loads(entries[-1]["details"])["counts"]["deleted"] > 0
    for entry in entries:
        for value in personal:
            assert value.lower() not in entry["details"].lower()
    assert (await gdpr.audit.verify()).intact


async def test_wrong_states_are_bad_input_naming_the_field(gdpr: Gdpr) -> None:
    request_id = await verified(gdpr, "ACCESS")
    with pytest.raises(BadUserInputError) as raised:
        await gdpr.requests.verify(OFFICER, request_id)
    assert raised.value.details == {"field": "id", "status": "VERIFIED"}
    await gdpr.work.run_access(Context(), {"subjectRequestId": request_id})
    with pytest.raises(BadUserInputError):
        await gdpr.requests.deny(OFFICER, request_id, "too late")
    with pytest.raises(BadUserInputError):
        await gdpr.requests.extend_deadline(OFFICER, request_id, 1, "too late")
    denied = await gdpr.requests.create(OFFICER, NewSubjectRequest("ACCESS", 1, None, "x"))
    assert (await gdpr.requests.deny(OFFICER, denied.id, "Identity not proven")).status == "DENIED"
    with pytest.raises(BadUserInputError):
        await gdpr.requests.verify(OFFICER, denied.id)


@pytest.mark.parametrize(
    ("new", "error", "field"),
    [
        (NewSubjectRequest("ACCESS", 10**9, None, "r"), NotFoundError, "subject.customerId"),
        (
            NewSubjectRequest("ACCESS", None, "nobody@example.com", "r"),
            NotFoundError,
            "subject.email",
        ),
        (NewSubjectRequest("ACCESS", 1, "a@example.com", "r"), BadUserInputError, "subject"),
        (NewSubjectRequest("ACCESS", None, None, "r"), BadUserInputError, "subject"),
        (
            NewSubjectRequest("ACCESS", None, "not-an-email", "r"),
            BadUserInputError,
            "subject.email",
        ),
        (NewSubjectRequest("ACCESS", 1, None, "  "), BadUserInputError, "reason"),
        (NewSubjectRequest("COPY", 1, None, "r"), BadUserInputError, "type"),
    ],
)
async def test_bad_requests_name_the_field(
    gdpr: Gdpr, new: NewSubjectRequest, error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as raised:
        await gdpr.requests.create(OFFICER, new)
    assert getattr(raised.value, "details", {}).get("field") == field
    assert "nobody@example.com" not in str(raised.value)


async def test_unknown_requests_are_not_found(gdpr: Gdpr) -> None:
    with pytest.raises(NotFoundError) as raised:
        await gdpr.requests.verify(OFFICER, 999)
    assert raised.value.details == {"field": "id"}


async def test_only_privacy_officers_and_admins_handle_requests(gdpr: Gdpr) -> None:
    with pytest.raises(ForbiddenError):
        await gdpr.requests.create(ANALYST, NewSubjectRequest("ACCESS", 1, None, "r"))
    admin = Actor("1", frozenset({"admin"}), scopes_for(["admin"]))
    created = await gdpr.requests.create(admin, NewSubjectRequest("ERASURE", 1, None, "r"))
    assert (created.type, created.customer_id, created.reason) == ("ERASURE", 1, "r")
    assert created.requested_by == "user:1"


def test_months_are_calendar_months() -> None:
    assert add_months(datetime(2026, 1, 31, 9, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, 9, tzinfo=UTC
    )
    assert add_months(datetime(2024, 1, 31, tzinfo=UTC), 1) == datetime(2024, 2, 29, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 15, tzinfo=UTC), 3) == datetime(2027, 2, 15, tzinfo=UTC)


async def test_the_deadline_is_a_month_and_extends_by_two_more_within_it(
    engine: AsyncEngine,
) -> None:
    now = [datetime(2026, 1, 31, 12, tzinfo=UTC)]
    audit = SqlAuditService(engine)
    requests = SqlSubjectRequestService(engine, audit, RequestLimits(), clock=lambda: now[0])
    record = await requests.create(OFFICER, NewSubjectRequest("ACCESS", 1, None, "r"))
    assert record.due_at == datetime(2026, 2, 28, 12, tzinfo=UTC)
    extended = await requests.extend_deadline(OFFICER, record.id, 1, "Many datasets")
    assert extended.due_at == datetime(2026, 3, 31, 12, tzinfo=UTC)
    with pytest.raises(BadUserInputError) as raised:
        await requests.extend_deadline(OFFICER, record.id, 2, "More")
    assert raised.value.details == {"field": "months"}
    assert (await requests.extend_deadline(OFFICER, record.id, 1, "More")).due_at == datetime(
        2026, 4, 30, 12, tzinfo=UTC
    )
    late = await requests.create(OFFICER, NewSubjectRequest("ACCESS", 2, None, "r"))
    now[0] = datetime(2026, 2, 28, 12, tzinfo=UTC)
    with pytest.raises(BadUserInputError) as raised:
        await requests.extend_deadline(OFFICER, late.id, 1, "Too late")
    assert raised.value.details == {"field": "id"}
    assert (await audit.verify()).intact


async def test_a_dataset_the_store_refuses_leaves_the_request_partially_completed(
    gdpr: Gdpr, tmp_path: Path
) -> None:
    path = tmp_path / "map.yaml"
    # 'gone' breaks the tier check constraint: the store refuses the customers change.
    path.write_text(
        "datasets:\n"
        "  - name: customers\n"
        "    table: customers\n"
        "    subject: {column: id}\n"
        "    erasure: mask\n"
        "    columns: {name: redact, tier: {strategy: redact, value: gone}}\n"
    )
    work = replace(gdpr.work, privacy_map=load_privacy_map(path))
    (customer,) = await rows_of(
        gdpr.engine, sa.select(tables.customers).where(tables.customers.c.id == SUBJECT)
    )
    request_id = await verified(gdpr, "ERASURE")
    result = await work.run_erasure(Context(), {"subjectRequestId": request_id})
    report = {item["dataset"]: item for item in result["datasets"]}
    assert report["customers"]["error"] is not None
    assert report["customers"]["masked"] == 0
    assert report["feature_values"]["deleted"] > 0
    record = await gdpr.requests.get(OFFICER, request_id)
    assert record.status == "PARTIALLY_COMPLETED"
    assert record.error == "1 datasets could not be erased"
    assert customer["name"] not in (record.result or "")
    (unchanged,) = await rows_of(
        gdpr.engine, sa.select(tables.customers).where(tables.customers.c.id == SUBJECT)
    )
    assert unchanged == customer, "the refused dataset's transaction changed nothing"


async def test_a_cancelled_erasure_stops_between_datasets(gdpr: Gdpr) -> None:
    request_id = await verified(gdpr, "ERASURE")
    result = await gdpr.work.run_erasure(Context(stop=True), {"subjectRequestId": request_id})
    assert result["cancelled"] is True
    assert result["datasets"] == []
    record = await gdpr.requests.get(OFFICER, request_id)
    assert (record.status, record.error) == ("FAILED", "cancelled")


async def test_a_job_for_a_denied_request_fails_without_retries(gdpr: Gdpr) -> None:
    request_id = await verified(gdpr, "ACCESS")
    await gdpr.requests.deny(OFFICER, request_id, "Identity not proven")
    with pytest.raises(JobFailure) as raised:
        await gdpr.work.run_access(Context(), {"subjectRequestId": request_id})
    assert raised.value.retryable is False
    assert (await gdpr.requests.get(OFFICER, request_id)).status == "DENIED"
