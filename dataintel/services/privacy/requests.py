"""GDPR subject requests: their states, deadlines and audit trail, kept in subject_requests.

A request is RECEIVED, then VERIFIED (the officer checked the person is the subject), then
IN_PROGRESS while its job runs, and ends COMPLETED, PARTIALLY_COMPLETED (some datasets
failed, the others are done), FAILED, or DENIED. It is due one calendar month after receipt
(GDPR Art. 12(3)); the deadline may be extended by up to two more months, within the first.
Every state change and extension is one audit entry in the same transaction: ids, states,
actor and counts, never the personal data.

One idea, a little past the usual size: a request's life (its records, the service's
Protocol and the SQL that moves it from state to state with its audit entry) is read as one
when a state or a rule is added; what a request does to the data is ``access``,
``erasure`` and ``work``.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import BadUserInputError, ForbiddenError, NotFoundError
from dataintel.services.audit import AuditEvent, AuditService
from dataintel.services.auth import Actor, audit_event
from dataintel.services.pagination import (
    Keyset,
    Page,
    PageRequest,
    keyset_conditions,
    keyset_order,
    page_from_rows,
)
from dataintel.services.privacy.dispatch import KIND_BY_TYPE, WorkDispatcher
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, fetch_all
from dataintel.store.rows import columns_of, record_from

RequestType = Literal["ACCESS", "ERASURE"]
RequestStatus = Literal[
    "RECEIVED", "VERIFIED", "IN_PROGRESS", "COMPLETED", "PARTIALLY_COMPLETED", "DENIED", "FAILED"
]
REQUEST_TYPES: tuple[RequestType, ...] = ("ACCESS", "ERASURE")
FINAL_STATUSES: frozenset[RequestStatus] = frozenset(
    {"COMPLETED", "PARTIALLY_COMPLETED", "DENIED", "FAILED"}
)
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "RECEIVED": frozenset({"VERIFIED", "DENIED"}),
    # FAILED from VERIFIED: the job gave up (or was cancelled) before it started.
    "VERIFIED": frozenset({"IN_PROGRESS", "DENIED", "FAILED"}),
    "IN_PROGRESS": frozenset({"COMPLETED", "PARTIALLY_COMPLETED", "FAILED"}),
}
"""Where each state may go; a final state goes nowhere."""

SCOPE_BY_TYPE: Mapping[str, str] = {"ACCESS": "gdpr:export", "ERASURE": "gdpr:erase"}
"""The scope an actor needs to handle a request of each type (privacy_officer, admin)."""

DOMAIN = "gdpr"
AUDIT_ACTION = "subject_request.transition"
AUDIT_EXTENSION = "subject_request.deadline_extended"


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` calendar months later; the month's last day when it is shorter."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True, slots=True)
class SubjectRequestRecord:
    """One subject request as stored; ``result`` is JSON text once its job finished."""

    id: int
    type: str
    status: str
    customer_id: int
    reason: str
    requested_by: str
    received_at: datetime
    due_at: datetime
    extended_months: int
    extension_reason: str | None
    verified_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    denial_reason: str | None
    job_id: str | None
    result: str | None
    error: str | None

    @property
    def result_mapping(self) -> dict[str, Any] | None:
        """The result, decoded from its stored JSON text."""
        if self.result is None:
            return None
        decoded: dict[str, Any] = orjson.loads(self.result)
        return decoded


@dataclass(frozen=True, slots=True)
class NewSubjectRequest:
    """What createSubjectRequest takes: the type, the subject (one of two keys), a reason."""

    type: str
    customer_id: int | None
    email: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class SubjectRequestFilter:
    """Requests matching every given condition; None means no condition."""

    statuses: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Deadlines and input limits, from the settings."""

    due_months: int = 1
    max_extension_months: int = 2
    reason_max_length: int = 2000


class SubjectRequestService(Protocol):
    """Creates subject requests, moves them through their states and reads them."""

    async def create(self, actor: Actor, new: NewSubjectRequest) -> SubjectRequestRecord: ...

    async def get(self, actor: Actor, request_id: int) -> SubjectRequestRecord: ...

    async def requests(
        self, actor: Actor, where: SubjectRequestFilter, page: PageRequest
    ) -> Page[SubjectRequestRecord]: ...

    async def count(self, actor: Actor, where: SubjectRequestFilter) -> int: ...

    async def verify(self, actor: Actor, request_id: int) -> SubjectRequestRecord: ...

    async def deny(self, actor: Actor, request_id: int, reason: str) -> SubjectRequestRecord: ...

    async def extend_deadline(
        self, actor: Actor, request_id: int, months: int, reason: str
    ) -> SubjectRequestRecord: ...

    async def attach_job(self, request_id: int, job_id: str) -> SubjectRequestRecord: ...

    async def start(self, request_id: int, actor_name: str) -> SubjectRequestRecord: ...

    async def finish(
        self,
        request_id: int,
        actor_name: str,
        status: RequestStatus,
        result: Mapping[str, Any],
        counts: Mapping[str, Any],
        error: str | None = None,
    ) -> SubjectRequestRecord: ...

    async def fail_unfinished(
        self, request_id: int, actor_name: str, error: str
    ) -> SubjectRequestRecord | None: ...


_COLUMNS = tuple(columns_of(tables.subject_requests, SubjectRequestRecord))


def request_keyset(record: SubjectRequestRecord) -> Keyset:
    """The position of a request in the list's order (newest first)."""
    return (record.id,)


def _bad(message: str, field: str) -> BadUserInputError:
    return BadUserInputError(message, domain=DOMAIN, details={"field": field})


def _require_scope(actor: Actor, request_type: str) -> None:
    scope = SCOPE_BY_TYPE.get(request_type, "gdpr:erase")
    if scope not in actor.scopes:
        raise ForbiddenError(
            f"{request_type} requests need the {scope} scope (privacy_officer or admin).",
            domain=DOMAIN,
            details={"requiredScope": scope},
        )


def _require_any_scope(actor: Actor) -> None:
    if not any(scope in actor.scopes for scope in SCOPE_BY_TYPE.values()):
        raise ForbiddenError(
            "Subject requests need the gdpr:export or gdpr:erase scope.", domain=DOMAIN
        )


class SqlSubjectRequestService:
    """SubjectRequestService over the store's subject_requests table and the audit log."""

    def __init__(
        self,
        engine: StoreEngine,
        audit: AuditService,
        limits: RequestLimits | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.dispatcher: WorkDispatcher | None = None
        """Runs a verified request's work; set once the job functions are built."""
        self._engine = engine
        self._audit = audit
        self._limits = limits or RequestLimits()
        self._clock = clock or (lambda: datetime.now(UTC))

    def _reason(self, text: str, field: str) -> str:
        cleaned = text.strip()
        if not cleaned:
            raise _bad("Give a reason.", field)
        if len(cleaned) > self._limits.reason_max_length:
            raise _bad(
                f"The reason is longer than {self._limits.reason_max_length} characters.", field
            )
        return cleaned

    async def _subject(self, new: NewSubjectRequest) -> int:
        customers = tables.customers
        if (new.customer_id is None) == (new.email is None):
            raise _bad("Name the subject by exactly one of customerId and email.", "subject")
        if new.customer_id is not None:
            statement = sa.select(customers.c.id).where(customers.c.id == new.customer_id)
            field, shown = "subject.customerId", f"customer {new.customer_id}"
        else:
            email = (new.email or "").strip()
            if not email or "@" not in email:
                raise _bad("The subject's email is not an email address.", "subject.email")
            statement = sa.select(customers.c.id).where(
                sa.func.lower(customers.c.email) == email.lower()
            )
            # The email is personal data: the error does not repeat it.
            field, shown = "subject.email", "a customer with that email"
        found = await fetch_all(self._engine, statement)
        if not found:
            raise NotFoundError(f"There is no {shown}.", domain=DOMAIN, details={"field": field})
        return int(found[0][0])

    async def create(self, actor: Actor, new: NewSubjectRequest) -> SubjectRequestRecord:
        """Records a request as RECEIVED, due one calendar month (by default) from now."""
        if new.type not in REQUEST_TYPES:
            raise _bad(f"The type is one of {', '.join(REQUEST_TYPES)}.", "type")
        _require_scope(actor, new.type)
        reason = self._reason(new.reason, "reason")
        customer_id = await self._subject(new)
        now = self._clock()
        values = {
            "type": new.type,
            "status": "RECEIVED",
            "customer_id": customer_id,
            "reason": reason,
            "requested_by": actor.audit_name,
            "received_at": now,
            "due_at": add_months(now, self._limits.due_months),
            "extended_months": 0,
        }
        requests = tables.subject_requests
        async with self._audit.transaction() as connection:
            request_id = (
                await connection.execute(
                    sa.insert(requests).values(**values).returning(requests.c.id)
                )
            ).scalar_one()
            await self._audit.append_in(
                connection,
                audit_event(
                    actor,
                    AUDIT_ACTION,
                    f"subject_request:{request_id}",
                    details=_transition(request_id, new.type, None, "RECEIVED"),
                ),
            )
            return await _read(connection, request_id)

    async def get(self, actor: Actor, request_id: int) -> SubjectRequestRecord:
        """One request; NOT_FOUND for an unknown id."""
        _require_any_scope(actor)
        return await self._load(request_id)

    async def _load(self, request_id: int) -> SubjectRequestRecord:
        async with self._engine.connect() as connection:
            return await _read(connection, request_id)

    async def requests(
        self, actor: Actor, where: SubjectRequestFilter, page: PageRequest
    ) -> Page[SubjectRequestRecord]:
        """A page of requests, newest first."""
        _require_any_scope(actor)
        requests = tables.subject_requests
        for cursor in (page.after, page.before):
            if cursor is not None and (len(cursor) != 1 or not isinstance(cursor[0], int)):
                raise BadUserInputError("The cursor does not point into the subject requests.")
        keys = [requests.c.id]
        statement = (
            sa.select(*_COLUMNS)
            .where(*_conditions(where), *keyset_conditions(keys, True, page))
            .order_by(*keyset_order(keys, True, page))
            .limit(page.limit)
        )
        rows = await fetch_all(self._engine, statement)
        return page_from_rows([record_from(SubjectRequestRecord, row) for row in rows], page)

    async def count(self, actor: Actor, where: SubjectRequestFilter) -> int:
        """Requests matching the filter."""
        _require_any_scope(actor)
        statement = (
            sa.select(sa.func.count())
            .select_from(tables.subject_requests)
            .where(*_conditions(where))
        )
        rows = await fetch_all(self._engine, statement)
        return int(rows[0][0])

    async def _move(
        self,
        request_id: int,
        actor_name: str,
        request_id_of_call: str | None,
        to: RequestStatus,
        values: Mapping[str, Any],
        counts: Mapping[str, Any] | None = None,
        check: Any = None,
    ) -> SubjectRequestRecord:
        requests = tables.subject_requests
        async with self._audit.transaction() as connection:
            before = await _read(connection, request_id)
            if check is not None:
                check(before)
            allowed = TRANSITIONS.get(before.status, frozenset())
            if to not in allowed:
                raise BadUserInputError(
                    f"Subject request {request_id} is {before.status}: it cannot become {to}.",
                    domain=DOMAIN,
                    details={"field": "id", "status": before.status},
                )
            await connection.execute(
                sa.update(requests).where(requests.c.id == request_id).values(status=to, **values)
            )
            details = _transition(request_id, before.type, before.status, to)
            if counts:
                details["counts"] = dict(counts)
            await self._audit.append_in(
                connection,
                _event(actor_name, request_id_of_call, AUDIT_ACTION, request_id, details),
            )
            return await _read(connection, request_id)

    async def verify(self, actor: Actor, request_id: int) -> SubjectRequestRecord:
        """RECEIVED → VERIFIED: the officer checked the requester is the subject."""
        before = await self._load(request_id)
        _require_scope(actor, before.type)
        verified = await self._move(
            request_id,
            actor.audit_name,
            actor.request_id,
            "VERIFIED",
            {"verified_at": self._clock()},
        )
        if self.dispatcher is None:
            return verified
        job_id = await self.dispatcher.dispatch(
            KIND_BY_TYPE[verified.type],
            {"subjectRequestId": request_id},
            actor,
            f"subject_request:{request_id}",
        )
        return await self.attach_job(request_id, job_id)

    async def deny(self, actor: Actor, request_id: int, reason: str) -> SubjectRequestRecord:
        """RECEIVED or VERIFIED → DENIED, with the reason (kept on the request, not audited)."""
        cleaned = self._reason(reason, "reason")
        before = await self._load(request_id)
        _require_scope(actor, before.type)
        denied = await self._move(
            request_id,
            actor.audit_name,
            actor.request_id,
            "DENIED",
            {"denial_reason": cleaned, "finished_at": self._clock()},
        )
        if denied.job_id is not None and self.dispatcher is not None:
            # Verified, so its job is queued: it would only find the request DENIED.
            await self.dispatcher.cancel(denied.job_id)
        return denied

    async def extend_deadline(
        self, actor: Actor, request_id: int, months: int, reason: str
    ) -> SubjectRequestRecord:
        """Moves dueAt later by whole months, up to the allowed extension in all."""
        cleaned = self._reason(reason, "reason")
        limit = self._limits.max_extension_months
        if months < 1:
            raise _bad("Extend by at least one month.", "months")
        before = await self._load(request_id)
        _require_scope(actor, before.type)
        requests = tables.subject_requests
        async with self._audit.transaction() as connection:
            before = await _read(connection, request_id)
            if before.status in FINAL_STATUSES:
                raise BadUserInputError(
                    f"Subject request {request_id} is {before.status}: its deadline is moot.",
                    domain=DOMAIN,
                    details={"field": "id", "status": before.status},
                )
            if before.extended_months + months > limit:
                raise _bad(
                    f"The deadline may be extended by {limit} months in all;"
                    f" {before.extended_months} already are.",
                    "months",
                )
            original_due = add_months(before.received_at, self._limits.due_months)
            if self._clock() >= original_due:
                raise _bad(
                    "An extension must be made (and the subject told) within the first"
                    " period after receipt.",
                    "id",
                )
            extended = before.extended_months + months
            due_at = add_months(before.received_at, self._limits.due_months + extended)
            await connection.execute(
                sa.update(requests)
                .where(requests.c.id == request_id)
                .values(extended_months=extended, extension_reason=cleaned, due_at=due_at)
            )
            details = {
                "requestId": request_id,
                "type": before.type,
                "months": months,
                "extendedMonths": extended,
                "dueAt": due_at.isoformat(),
            }
            await self._audit.append_in(
                connection,
                _event(actor.audit_name, actor.request_id, AUDIT_EXTENSION, request_id, details),
            )
            return await _read(connection, request_id)

    async def attach_job(self, request_id: int, job_id: str) -> SubjectRequestRecord:
        """Records which job does the request's work (not a state change)."""
        requests = tables.subject_requests
        async with self._engine.begin() as connection:
            await connection.execute(
                sa.update(requests).where(requests.c.id == request_id).values(job_id=job_id)
            )
            return await _read(connection, request_id)

    async def start(self, request_id: int, actor_name: str) -> SubjectRequestRecord:
        """VERIFIED → IN_PROGRESS when the job starts; a retried job finds it IN_PROGRESS."""
        current = await self._load(request_id)
        if current.status == "IN_PROGRESS":
            return current
        return await self._move(
            request_id, actor_name, None, "IN_PROGRESS", {"started_at": self._clock()}
        )

    async def finish(
        self,
        request_id: int,
        actor_name: str,
        status: RequestStatus,
        result: Mapping[str, Any],
        counts: Mapping[str, Any],
        error: str | None = None,
    ) -> SubjectRequestRecord:
        """IN_PROGRESS → a final state, with the result (JSON) and the counts in the audit."""
        return await self._move(
            request_id,
            actor_name,
            None,
            status,
            {
                "finished_at": self._clock(),
                "result": orjson.dumps(dict(result), option=orjson.OPT_SORT_KEYS).decode(),
                "error": error,
            },
            counts,
        )

    async def fail_unfinished(
        self, request_id: int, actor_name: str, error: str
    ) -> SubjectRequestRecord | None:
        """VERIFIED or IN_PROGRESS → FAILED when its job gave up; None if it had ended."""
        current = await self._load(request_id)
        if current.status not in ("VERIFIED", "IN_PROGRESS"):
            return None
        return await self._move(
            request_id,
            actor_name,
            None,
            "FAILED",
            {"finished_at": self._clock(), "error": error},
        )


def _conditions(where: SubjectRequestFilter) -> list[Any]:
    requests = tables.subject_requests
    conditions: list[Any] = []
    if where.statuses is not None:
        conditions.append(requests.c.status.in_(where.statuses))
    if where.types is not None:
        conditions.append(requests.c.type.in_(where.types))
    return conditions


def _transition(
    request_id: int, request_type: str, before: str | None, after: str
) -> dict[str, Any]:
    return {"requestId": request_id, "type": request_type, "from": before, "to": after}


def _event(
    actor_name: str,
    call_request_id: str | None,
    action: str,
    request_id: int,
    details: Mapping[str, Any],
) -> AuditEvent:
    return AuditEvent(
        actor=actor_name,
        action=action,
        target=f"subject_request:{request_id}",
        outcome="success",
        request_id=call_request_id,
        details=details,
    )


async def _read(connection: AsyncConnection, request_id: int) -> SubjectRequestRecord:
    requests = tables.subject_requests
    row = (
        await connection.execute(sa.select(*_COLUMNS).where(requests.c.id == request_id))
    ).first()
    if row is None:
        raise NotFoundError(
            f"There is no subject request {request_id}.", domain=DOMAIN, details={"field": "id"}
        )
    return record_from(SubjectRequestRecord, row)


def counts_of(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Totals over per-dataset outcomes: rows masked, deleted, retained and exported."""
    totals: dict[str, int] = {}
    for outcome in outcomes:
        for name in ("masked", "deleted", "retained", "rows"):
            if isinstance(outcome.get(name), int):
                totals[name] = totals.get(name, 0) + int(outcome[name])
    return totals
