"""The audit log on both stores: the hash chain, tamper detection, batched appends, queries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import BadUserInputError, ForbiddenError
from dataintel.observability.drops import DropCounts, Drops
from dataintel.services.audit import (
    AuditEvent,
    AuditFilter,
    SqlAuditService,
    audit_keyset,
    entry_hash,
)
from dataintel.services.auth import Actor, scopes_for
from dataintel.services.pagination import PageRequest
from dataintel.settings import Settings
from dataintel.store import tables
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from tests.plugins.faults import eventually
from tests.plugins.store import sqlite_url

AUDITOR = Actor("1", frozenset({"admin"}), scopes_for(["admin"]))


def event(number: int, **overrides: str) -> AuditEvent:
    fields = {
        "actor": f"user:{number % 3}",
        "action": "auth.login" if number % 2 else "auth.api_key.create",
        "target": f"user:{number}",
        "outcome": "success" if number % 4 else "failure",
        "request_id": f"request-{number}",
    }
    fields.update(overrides)
    return AuditEvent(**fields, details={"number": number, "note": "ünïcode"})


async def append_many(audit: SqlAuditService, count: int) -> list[int]:
    return [(await audit.append(event(number))).id for number in range(1, count + 1)]


async def test_entries_chain_to_the_one_before(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    first = await audit.append(event(1))
    second = await audit.append(event(2))
    assert first.prev_hash is None
    assert second.prev_hash == first.entry_hash
    assert second.entry_hash == entry_hash(
        occurred_at=second.occurred_at,
        actor=second.actor,
        action=second.action,
        target=second.target,
        outcome=second.outcome,
        request_id=second.request_id,
        details=second.details,
        prev_hash=second.prev_hash,
    )
    report = await audit.verify()
    assert report.intact
    assert report.entries_checked == 2
    assert report.head_hash == second.entry_hash


async def test_empty_log_is_intact(store_engine: AsyncEngine) -> None:
    report = await SqlAuditService(store_engine).verify()
    assert report.intact
    assert report.entries_checked == 0
    assert report.head_hash is None


async def test_changed_entry_is_named(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    ids = await append_many(audit, 6)
    log = tables.audit_log
    async with store_engine.begin() as connection:
        await connection.execute(
            sa.update(log).where(log.c.id == ids[3]).values(outcome="success", actor="user:0")
        )
    report = await audit.verify()
    assert report.first_broken_id == ids[3]
    assert report.entries_checked == 3
    assert report.problem is not None
    assert "content" in report.problem


async def test_changed_entry_with_recomputed_hash_breaks_the_next_link(
    store_engine: AsyncEngine,
) -> None:
    audit = SqlAuditService(store_engine)
    ids = await append_many(audit, 4)
    log = tables.audit_log
    async with store_engine.begin() as connection:
        row = (await connection.execute(sa.select(log).where(log.c.id == ids[1]))).one()
        forged = entry_hash(
            occurred_at=row.occurred_at,
            actor="user:99",
            action=row.action,
            target=row.target,
            outcome=row.outcome,
            request_id=row.request_id,
            details=row.details,
            prev_hash=row.prev_hash,
        )
        await connection.execute(
            sa.update(log).where(log.c.id == ids[1]).values(actor="user:99", entry_hash=forged)
        )
    report = await audit.verify()
    assert report.first_broken_id == ids[2]
    assert report.problem is not None
    assert "prev_hash" in report.problem


async def test_deleted_entry_is_detected_at_the_next(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    ids = await append_many(audit, 5)
    log = tables.audit_log
    async with store_engine.begin() as connection:
        await connection.execute(sa.delete(log).where(log.c.id == ids[2]))
    report = await audit.verify()
    assert report.first_broken_id == ids[3]
    assert report.entries_checked == 2


async def test_deleted_first_entry_is_detected(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    ids = await append_many(audit, 3)
    async with store_engine.begin() as connection:
        await connection.execute(sa.delete(tables.audit_log).where(tables.audit_log.c.id == ids[0]))
    assert (await audit.verify()).first_broken_id == ids[1]


async def test_concurrent_appends_never_fork_the_chain(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    await asyncio.gather(*(audit.append(event(number)) for number in range(1, 41)))
    report = await audit.verify()
    assert report.intact
    assert report.entries_checked == 40


async def test_concurrent_appends_commit_in_batches_on_one_valid_chain(
    store_engine: AsyncEngine,
) -> None:
    audit = SqlAuditService(store_engine, batch_size=50)
    awaited = [audit.append(event(number)) for number in range(1, 101)]
    submitted = [audit.submit(event(number)) for number in range(101, 151)]
    # Entries written inside change transactions interleave with the writer's batches.

    async def change(number: int) -> None:
        async with audit.transaction() as connection:
            await audit.append_in(connection, event(number))

    records, _ = await asyncio.gather(
        asyncio.gather(*awaited), asyncio.gather(*(change(number) for number in range(151, 161)))
    )
    await audit.flush()
    assert all(submitted)
    assert [record.request_id for record in records] == [
        f"request-{number}" for number in range(1, 101)
    ]
    report = await audit.verify()
    assert report.intact
    assert report.entries_checked == 160
    # 150 queued entries in batches of at most 50: a handful of transactions, not 150.
    assert 3 <= audit.writer.batches <= 10


async def test_a_full_queue_drops_and_counts_unawaited_entries(store_engine: AsyncEngine) -> None:
    drops = Drops()
    audit = SqlAuditService(store_engine, queue_size=3, batch_size=1, drops=drops)
    async with audit.transaction() as connection:
        # The log's lock is held, as by a long change: the writer takes one entry and waits.
        await audit.append_in(connection, event(1))
        assert audit.submit(event(2))
        await eventually(lambda: _true(audit.writer.queued == 0))
        assert [audit.submit(event(number)) for number in range(3, 7)] == [
            True,
            True,
            True,
            False,
        ]
        assert drops.counts().audit_queue_overflow == 1
    await audit.flush()
    report = await audit.verify()
    assert report.intact
    assert report.entries_checked == 5


async def test_awaited_appends_wait_for_room_instead_of_dropping(
    store_engine: AsyncEngine,
) -> None:
    drops = Drops()
    audit = SqlAuditService(store_engine, queue_size=2, batch_size=2, drops=drops)
    records = await asyncio.gather(*(audit.append(event(number)) for number in range(1, 21)))
    assert len({record.id for record in records}) == 20
    assert drops.counts() == DropCounts()
    assert (await audit.verify()).entries_checked == 20


async def test_a_failed_batch_fails_its_waiters_and_counts_the_rest(tmp_path: Path) -> None:
    engine = create_engine(Settings(database_url=sqlite_url(tmp_path / "store.db")).store)
    await upgrade(engine)
    drops = Drops()
    audit = SqlAuditService(engine, drops=drops)
    try:
        await audit.append(event(1))
        # The store's file turns to garbage under the open pool (a disk fault).
        await engine.dispose()
        (tmp_path / "store.db").write_bytes(b"this is not a SQLite database" * 200)
        waiting = audit.append(event(2))
        assert audit.submit(event(3))
        with pytest.raises(sa.exc.DatabaseError):
            await waiting
        await audit.flush()
        assert drops.counts().audit_write_failed == 1
    finally:
        await engine.dispose()


async def test_text_longer_than_its_column_is_cut_and_marked(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    long, usual = await asyncio.gather(
        audit.append(event(1, target="token:" + "x" * 2_000)), audit.append(event(2))
    )
    assert len(long.target) == tables.audit_log.c.target.type.length  # type: ignore[attr-defined]
    assert long.target.startswith("token:xxx")
    assert long.target.endswith("…")
    assert usual.target == "user:2"
    assert (await audit.verify()).intact


async def test_one_entry_the_store_refuses_fails_alone(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    # PostgreSQL refuses a NUL character in text; SQLite keeps it. Queued together, the three
    # entries meet in one batch.
    results = await asyncio.gather(
        audit.append(event(1)),
        audit.append(event(2, target="user:\x00")),
        audit.append(event(3)),
        return_exceptions=True,
    )
    first, refused, third = results
    assert not isinstance(first, BaseException)
    assert not isinstance(third, BaseException)
    if store_engine.dialect.name == "postgresql":
        assert isinstance(refused, sa.exc.DBAPIError)
    report = await audit.verify()
    assert report.intact
    assert report.entries_checked == (2 if store_engine.dialect.name == "postgresql" else 3)


async def _true(value: bool) -> bool:
    return value


async def test_change_and_entry_roll_back_together(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    await audit.append(event(1))

    async def failing_change() -> None:
        async with audit.transaction() as connection:
            await audit.append_in(connection, event(2))
            raise RuntimeError("change failed")

    with pytest.raises(RuntimeError, match="change failed"):
        await failing_change()
    after = await audit.append(event(3))
    report = await audit.verify()
    assert report.intact
    assert report.entries_checked == 2
    assert report.head_hash == after.entry_hash


async def test_query_filters_and_pages_newest_first(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    ids = await append_many(audit, 12)
    logins = AuditFilter(actions=("auth.login",))
    first = await audit.entries(AUDITOR, logins, PageRequest(4))
    assert [record.id for record in first.items] == [ids[10], ids[8], ids[6], ids[4]]
    assert first.has_next_page
    rest = await audit.entries(AUDITOR, logins, PageRequest(4, audit_keyset(first.items[-1])))
    assert [record.id for record in rest.items] == [ids[2], ids[0]]
    assert not rest.has_next_page
    assert await audit.count(AUDITOR, logins) == 6

    failures = AuditFilter(outcomes=("failure",), actors=("user:1",))
    found = await audit.entries(AUDITOR, failures, PageRequest(10))
    assert [record.target for record in found.items] == ["user:4"]
    assert found.items[0].details_mapping == {"note": "ünïcode", "number": 4}

    by_request = await audit.entries(AUDITOR, AuditFilter(request_id="request-7"), PageRequest(5))
    assert [record.id for record in by_request.items] == [ids[6]]

    now = datetime.now(UTC)
    future = AuditFilter(occurred_from=now + timedelta(minutes=1))
    assert (await audit.entries(AUDITOR, future, PageRequest(5))).items == []
    window = AuditFilter(occurred_from=now - timedelta(minutes=5), occurred_before=now)
    assert await audit.count(AUDITOR, window) == 12


async def test_reading_needs_the_read_audit_scope(store_engine: AsyncEngine) -> None:
    audit = SqlAuditService(store_engine)
    analyst = Actor("2", frozenset({"analyst"}), scopes_for(["analyst"]))
    with pytest.raises(ForbiddenError):
        await audit.entries(analyst, AuditFilter(), PageRequest(5))
    with pytest.raises(ForbiddenError):
        await audit.count(Actor(None), AuditFilter())
    officer = Actor("3", frozenset({"privacy_officer"}), scopes_for(["privacy_officer"]))
    assert (await audit.entries(officer, AuditFilter(), PageRequest(5))).items == []


async def test_reversed_time_range_is_bad_input(store_engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    where = AuditFilter(occurred_from=now, occurred_before=now - timedelta(seconds=1))
    with pytest.raises(BadUserInputError):
        await SqlAuditService(store_engine).entries(AUDITOR, where, PageRequest(5))
