"""The append-only audit log: hash-chained entries, batched appends, verification, queries."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

# The entry vocabulary lives in a dependency-free module (the gateway builds entries too);
# re-exported here for the services that write entries.
from dataintel.audit_events import DENIED as DENIED
from dataintel.audit_events import FAILURE as FAILURE
from dataintel.audit_events import OUTCOMES as OUTCOMES
from dataintel.audit_events import SUCCESS as SUCCESS
from dataintel.audit_events import AuditEvent as AuditEvent
from dataintel.errors import BadUserInputError, ForbiddenError
from dataintel.observability.drops import Drops
from dataintel.rbac import READ_AUDIT_SCOPE
from dataintel.services.audit_writer import AuditWriter
from dataintel.services.pagination import (
    Keyset,
    Page,
    PageRequest,
    keyset_conditions,
    keyset_order,
    page_from_rows,
)
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine
from dataintel.store.rows import columns_of, record_from

# pg_advisory_xact_lock takes a bigint; any constant works as long as only the audit log uses it.
_POSTGRES_LOCK_KEY = int.from_bytes(hashlib.sha256(b"dataintel.audit_log").digest()[:8], "big") >> 1
_VERIFY_BATCH_ROWS = 1000


class Reader(Protocol):
    """Whoever reads the log: anything with a set of scopes (the request's viewer, an actor)."""

    @property
    def scopes(self) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One written entry of the log, with the hash of the entry before it and its own."""

    id: int
    occurred_at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    request_id: str | None
    details: str
    prev_hash: str | None
    entry_hash: str

    @property
    def details_mapping(self) -> dict[str, Any]:
        """The details, decoded from their stored JSON text."""
        decoded: dict[str, Any] = orjson.loads(self.details)
        return decoded


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Entries matching every given condition; None means no condition."""

    actors: tuple[str, ...] | None = None
    actions: tuple[str, ...] | None = None
    outcomes: tuple[str, ...] | None = None
    targets: tuple[str, ...] | None = None
    request_id: str | None = None
    occurred_from: datetime | None = None
    occurred_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of checking the chain: how many entries, the head, and the first break."""

    entries_checked: int
    head_hash: str | None
    first_broken_id: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        """True when every entry matches its hash and links to the one before it."""
        return self.first_broken_id is None


class AuditService(Protocol):
    """Appends to the log, checks its chain and answers filtered queries on it."""

    async def append(self, event: AuditEvent) -> AuditRecord: ...

    def submit(self, event: AuditEvent) -> bool: ...

    async def flush(self) -> None: ...

    async def append_in(self, connection: AsyncConnection, event: AuditEvent) -> AuditRecord: ...

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    async def verify(self) -> ChainReport: ...

    async def entries(
        self, reader: Reader, where: AuditFilter, page: PageRequest
    ) -> Page[AuditRecord]: ...

    async def count(self, reader: Reader, where: AuditFilter) -> int: ...


def canonical_details(details: Mapping[str, Any]) -> str:
    """The details as the JSON text the hash covers: sorted keys, no whitespace."""
    try:
        return orjson.dumps(dict(details), option=orjson.OPT_SORT_KEYS).decode()
    except TypeError as error:
        raise ValueError(f"audit details must be JSON-serializable: {error}") from None


def entry_hash(
    *,
    occurred_at: datetime,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    request_id: str | None,
    details: str,
    prev_hash: str | None,
) -> str:
    """SHA-256 (hex) over the canonical JSON of an entry's fields and the previous entry's hash."""
    fields = {
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": outcome,
        "request_id": request_id,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _hash_of(record: AuditRecord) -> str:
    return entry_hash(
        occurred_at=record.occurred_at,
        actor=record.actor,
        action=record.action,
        target=record.target,
        outcome=record.outcome,
        request_id=record.request_id,
        details=record.details,
        prev_hash=record.prev_hash,
    )


# The audit_log columns in AuditRecord's field order, so rows turn into records directly.
_COLUMNS = tuple(columns_of(tables.audit_log, AuditRecord))


def _in(column: sa.ColumnElement[Any], values: tuple[str, ...] | None) -> list[Any]:
    return [] if values is None else [column.in_(values)]


def _conditions(where: AuditFilter) -> list[Any]:
    log = tables.audit_log.c
    conditions = [
        *_in(log.actor, where.actors),
        *_in(log.action, where.actions),
        *_in(log.outcome, where.outcomes),
        *_in(log.target, where.targets),
    ]
    if where.request_id is not None:
        conditions.append(log.request_id == where.request_id)
    if where.occurred_from is not None:
        conditions.append(log.occurred_at >= where.occurred_from)
    if where.occurred_before is not None:
        conditions.append(log.occurred_at < where.occurred_before)
    return conditions


def _require_reader(reader: Reader) -> None:
    if READ_AUDIT_SCOPE not in reader.scopes:
        raise ForbiddenError(
            "Reading the audit log needs the read:audit scope.",
            domain="audit",
            details={"requiredScope": READ_AUDIT_SCOPE},
        )


def audit_keyset(record: AuditRecord) -> Keyset:
    """The position of an entry in the log's query order (newest first)."""
    return (record.id,)


class SqlAuditService:
    """AuditService over the store's audit_log table, on SQLite and PostgreSQL."""

    def __init__(
        self,
        engine: StoreEngine,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        drops: Drops | None = None,
    ) -> None:
        self._engine = engine
        self.writer = AuditWriter(
            self._write_batch, queue_size=queue_size, batch_size=batch_size, drops=drops
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction holding the append lock: a change and its entries commit together."""
        async with self._engine.connect() as connection:
            # Two writers that both read the same tail would fork the chain, so the lock is
            # taken before the tail is read. SQLite: the database write lock, taken at BEGIN
            # rather than at the first write (the driver would otherwise read outside any
            # transaction). PostgreSQL: an advisory lock released at commit or rollback.
            if connection.dialect.name == "sqlite":
                await connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await connection.execute(
                    sa.select(sa.func.pg_advisory_xact_lock(_POSTGRES_LOCK_KEY))
                )
            try:
                yield connection
            except BaseException:
                await connection.rollback()
                raise
            await connection.commit()

    async def append(self, event: AuditEvent) -> AuditRecord:
        """Writes one entry, batched with concurrent ones; returns once it has committed."""
        event = _checked(event)
        return await self.writer.append(event)

    def submit(self, event: AuditEvent) -> bool:
        """Queues an entry nobody waits for; False (counted as a drop) when the queue is full."""
        event = _checked(event)
        return self.writer.submit(event)

    async def flush(self) -> None:
        """Waits until every queued entry is written: before the store closes at shutdown."""
        await self.writer.flush()

    async def append_in(self, connection: AsyncConnection, event: AuditEvent) -> AuditRecord:
        """Writes one entry inside a transaction opened by ``transaction()``."""
        event = _checked(event)
        return await _insert(connection, event, await _tail(connection))

    async def _write_batch(self, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        written: list[AuditRecord] = []
        async with self.transaction() as connection:
            tail = await _tail(connection)
            for event in events:
                record = await _insert(connection, event, tail)
                written.append(record)
                tail = record.entry_hash
        return written

    async def verify(self) -> ChainReport:
        """Recomputes every entry's hash and link, oldest first; names the first that fails."""
        log = tables.audit_log
        checked = 0
        previous_hash: str | None = None
        last_id = 0
        async with self._engine.connect() as connection:
            while True:
                rows = (
                    await connection.execute(
                        sa.select(*_COLUMNS)
                        .where(log.c.id > last_id)
                        .order_by(log.c.id)
                        .limit(_VERIFY_BATCH_ROWS)
                    )
                ).all()
                if not rows:
                    return ChainReport(checked, previous_hash)
                for row in rows:
                    record = record_from(AuditRecord, row)
                    if record.prev_hash != previous_hash:
                        problem = (
                            "its prev_hash does not match the entry before it"
                            " (an entry before it was changed, removed or inserted)"
                        )
                        return ChainReport(checked, previous_hash, record.id, problem)
                    if _hash_of(record) != record.entry_hash:
                        problem = "its content does not match its entry_hash (it was changed)"
                        return ChainReport(checked, previous_hash, record.id, problem)
                    checked += 1
                    previous_hash = record.entry_hash
                    last_id = record.id

    async def entries(
        self, reader: Reader, where: AuditFilter, page: PageRequest
    ) -> Page[AuditRecord]:
        """A page of entries, newest first; needs the read:audit scope."""
        _require_reader(reader)
        _check_range(where)
        log = tables.audit_log
        _check_cursors(page)
        keys = [log.c.id]
        statement = (
            sa.select(*_COLUMNS)
            .where(*_conditions(where), *keyset_conditions(keys, True, page))
            .order_by(*keyset_order(keys, True, page))
            .limit(page.limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return page_from_rows([record_from(AuditRecord, row) for row in rows], page)

    async def count(self, reader: Reader, where: AuditFilter) -> int:
        """Entries matching the filter; needs the read:audit scope."""
        _require_reader(reader)
        statement = (
            sa.select(sa.func.count()).select_from(tables.audit_log).where(*_conditions(where))
        )
        async with self._engine.connect() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def latest(self, limit: int) -> Sequence[AuditRecord]:
        """The newest entries, newest first, without an access check: for operators' tools."""
        log = tables.audit_log
        statement = sa.select(*_COLUMNS).order_by(log.c.id.desc()).limit(limit)
        async with self._engine.connect() as connection:
            return [
                record_from(AuditRecord, row) for row in (await connection.execute(statement)).all()
            ]


def _checked(event: AuditEvent) -> AuditEvent:
    # Checked in the caller, so that one bad entry fails its caller, not a whole batch. Text
    # longer than its column (PostgreSQL enforces the lengths) is cut, marked, not refused:
    # an entry about a long token id still records what happened.
    if not event.actor or not event.action:
        raise ValueError("an audit entry needs an actor and an action")
    canonical_details(event.details)
    fitted: dict[str, Any] = {
        name: _fitted(value, length)
        for name, length in _LENGTHS.items()
        if (value := getattr(event, name)) is not None and len(value) > length
    }
    return dataclasses.replace(event, **fitted) if fitted else event


def _fitted(text: str, length: int) -> str:
    return text[: length - 1] + "…"


_LENGTHS: dict[str, int] = {
    name: length
    for name in ("actor", "action", "target", "outcome", "request_id")
    if (length := getattr(tables.audit_log.c[name].type, "length", None)) is not None
}


async def _tail(connection: AsyncConnection) -> str | None:
    log = tables.audit_log
    statement = sa.select(log.c.entry_hash).order_by(log.c.id.desc()).limit(1)
    tail: str | None = (await connection.execute(statement)).scalar_one_or_none()
    return tail


async def _insert(
    connection: AsyncConnection, event: AuditEvent, prev_hash: str | None
) -> AuditRecord:
    log = tables.audit_log
    draft = AuditRecord(
        id=0,
        occurred_at=datetime.now(UTC),
        actor=event.actor,
        action=event.action,
        target=event.target,
        outcome=event.outcome,
        request_id=event.request_id,
        details=canonical_details(event.details),
        prev_hash=prev_hash,
        entry_hash="",
    )
    digest = _hash_of(draft)
    values = {column.name: getattr(draft, column.name) for column in _COLUMNS[1:-1]}
    new_id = (
        await connection.execute(
            sa.insert(log).values(**values, entry_hash=digest).returning(log.c.id)
        )
    ).scalar_one()
    return replace(draft, id=new_id, entry_hash=digest)


def _check_cursors(page: PageRequest) -> None:
    for cursor in (page.after, page.before):
        if cursor is not None and (len(cursor) != 1 or not isinstance(cursor[0], int)):
            raise BadUserInputError("The cursor does not point into the audit log.")


def _check_range(where: AuditFilter) -> None:
    low, high = where.occurred_from, where.occurred_before
    if low is not None and high is not None and low >= high:
        raise BadUserInputError("'occurredFrom' must be before 'occurredBefore'.")
