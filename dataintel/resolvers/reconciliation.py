"""Resolvers of reconciliation: declared comparisons, runs and their history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dataintel.errors import NotFoundError
from dataintel.resolvers import run_history
from dataintel.resolvers.freshness import watched
from dataintel.resolvers.info import Info
from dataintel.services.pagination import Page, PageRequest
from dataintel.services.reconciliation import (
    ComparisonDefinition,
    ReconcileOverrides,
    ReconciliationRun,
)

_DOMAIN = "reconciliation"


async def comparisons(
    info: Info,
) -> list[tuple[ComparisonDefinition, ReconciliationRun | None]]:
    """Every declared comparison with its last run, in one read."""
    service = info.context.services.reconciliation
    definitions = list(service.comparisons.values())
    latest = await watched(info, service.latest([definition.id for definition in definitions]))
    return list(zip(definitions, latest, strict=True))


async def comparison(
    info: Info, comparison_id: str
) -> tuple[ComparisonDefinition, ReconciliationRun | None]:
    """One declared comparison with its last run; NOT_FOUND for an unknown id."""
    service = info.context.services.reconciliation
    definition = service.comparisons.get(comparison_id)
    if definition is None:
        raise NotFoundError(f"There is no comparison '{comparison_id}'.", domain=_DOMAIN)
    (latest,) = await watched(info, service.latest([comparison_id]))
    return definition, latest


async def history(
    info: Info, comparison_id: str, page: PageRequest
) -> tuple[Page[ReconciliationRun], Callable[[], Awaitable[int]]]:
    """A page of a comparison's runs, newest first, and how to count them all."""
    return await run_history.history(
        info, info.context.services.reconciliation, comparison_id, page
    )


async def reconcile(
    info: Info, comparison_id: str, overrides: ReconcileOverrides
) -> ReconciliationRun:
    """Runs a comparison now, in this request, and returns its stored report."""
    viewer = info.context.viewer
    requested_by = viewer.user_id if viewer.user_id is not None else "anonymous"
    service = info.context.services.reconciliation
    return await service.run(comparison_id, overrides, requested_by)
