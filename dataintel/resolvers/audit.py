"""Resolvers of the audit domain: the log, filtered and paginated."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dataintel.resolvers.commerce import page_request as page_request
from dataintel.resolvers.info import Info
from dataintel.services.audit import AuditFilter, AuditRecord
from dataintel.services.pagination import Page, PageRequest


async def entries(
    info: Info, page: PageRequest, where: AuditFilter
) -> tuple[Page[AuditRecord], Callable[[], Awaitable[int]]]:
    """A page of audit entries, newest first, with a count on demand; needs read:audit."""
    service, viewer = info.context.services.audit, info.context.viewer
    found = await service.entries(viewer, where, page)
    return found, lambda: service.count(viewer, where)
