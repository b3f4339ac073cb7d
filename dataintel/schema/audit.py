"""The audit domain: the append-only log of logins, credential and role changes, denials."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from dataintel.directives.auth import Auth
from dataintel.rbac import READ_AUDIT_SCOPE
from dataintel.resolvers import audit as resolvers
from dataintel.resolvers.info import Info
from dataintel.schema.commerce import FilterDescription
from dataintel.schema.pagination import (
    AfterArgument,
    BeforeArgument,
    Connection,
    FirstArgument,
    LastArgument,
)
from dataintel.services import audit as records
from dataintel.services.audit import audit_keyset


def _words(values: list[str] | None) -> tuple[str, ...] | None:
    return tuple(values) if values is not None else None


@strawberry.type(description="One entry of the audit log, chained to the one before it.")
class AuditEntry:
    id: strawberry.ID = strawberry.field(description="Its stable, opaque identifier.")
    occurred_at: datetime = strawberry.field(description="When it happened (UTC).")
    actor: str = strawberry.field(
        description="Who: user:<id>, external:<subject>, email:<address> (login), operator,"
        " anonymous."
    )
    action: str = strawberry.field(description="What, e.g. auth.login, auth.user.set_roles.")
    target: str = strawberry.field(description="What it was done to, e.g. user:42.")
    outcome: str = strawberry.field(description="success, failure or denied.")
    request_id: str | None = strawberry.field(description="The request it happened in.")
    details: JSON = strawberry.field(description="What else is worth knowing, as an object.")
    prev_hash: str | None = strawberry.field(description="entryHash of the entry before it.")
    entry_hash: str = strawberry.field(
        description="SHA-256 of this entry's fields and prevHash (see docs/auth.md)."
    )

    @classmethod
    def from_record(cls, record: records.AuditRecord) -> AuditEntry:
        return cls(
            id=strawberry.ID(str(record.id)),
            occurred_at=record.occurred_at,
            actor=record.actor,
            action=record.action,
            target=record.target,
            outcome=record.outcome,
            request_id=record.request_id,
            details=JSON(record.details_mapping),
            prev_hash=record.prev_hash,
            entry_hash=record.entry_hash,
        )


@strawberry.input(description="Audit entries matching every given condition.")
class AuditFilter:
    actor: list[str] | None = strawberry.field(default=None, description="Any of these actors.")
    action: list[str] | None = strawberry.field(default=None, description="Any of these.")
    outcome: list[str] | None = strawberry.field(default=None, description="Any of these.")
    target: list[str] | None = strawberry.field(default=None, description="Any of these.")
    request_id: str | None = strawberry.field(default=None, description="In this request.")
    occurred_from: datetime | None = strawberry.field(default=None, description="At or after.")
    occurred_before: datetime | None = strawberry.field(default=None, description="Before.")

    def to_record(self) -> records.AuditFilter:
        return records.AuditFilter(
            actors=_words(self.actor),
            actions=_words(self.action),
            outcomes=_words(self.outcome),
            targets=_words(self.target),
            request_id=self.request_id,
            occurred_from=self.occurred_from,
            occurred_before=self.occurred_before,
        )


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="The audit log, newest first, filtered; needs the read:audit scope.",
        directives=[Auth(scopes=[READ_AUDIT_SCOPE])],
    )
    async def audit_log(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
        filter: Annotated[AuditFilter | None, FilterDescription] = None,
    ) -> Connection[AuditEntry] | None:
        where = filter.to_record() if filter is not None else records.AuditFilter()
        page = resolvers.page_request(info, first, after, last, before)
        found, count = await resolvers.entries(info, page, where)
        return Connection.from_page(found, AuditEntry.from_record, audit_keyset, count)
