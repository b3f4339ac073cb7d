"""Resolvers of data quality: declared checks, runs, history and the datasets' health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dataintel.errors import NotFoundError
from dataintel.resolvers import run_history
from dataintel.resolvers.freshness import watched
from dataintel.resolvers.info import Info
from dataintel.services.pagination import Page, PageRequest
from dataintel.services.quality import (
    CheckDefinition,
    CheckSelection,
    DatasetHealth,
    QualityResult,
)

_DOMAIN = "quality"


async def checks(info: Info) -> list[tuple[CheckDefinition, QualityResult | None]]:
    """Every declared check with its latest result, in one read."""
    service = info.context.services.quality
    definitions = list(service.checks.values())
    latest = await watched(info, service.latest([definition.id for definition in definitions]))
    return list(zip(definitions, latest, strict=True))


async def check(info: Info, check_id: str) -> tuple[CheckDefinition, QualityResult | None]:
    """One declared check with its latest result; NOT_FOUND for an unknown id."""
    service = info.context.services.quality
    definition = service.checks.get(check_id)
    if definition is None:
        raise NotFoundError(f"There is no quality check '{check_id}'.", domain=_DOMAIN)
    (latest,) = await watched(info, service.latest([check_id]))
    return definition, latest


async def history(
    info: Info, check_id: str, page: PageRequest
) -> tuple[Page[QualityResult], Callable[[], Awaitable[int]]]:
    """A page of a check's results, newest first, and how to count them all."""
    return await run_history.history(info, info.context.services.quality, check_id, page)


async def run(info: Info, selection: CheckSelection) -> tuple[str, list[QualityResult]]:
    """Runs the selected checks now, in this request; returns the run id and results."""
    return await info.context.services.quality.run(selection)


async def dataset_health(info: Info) -> list[DatasetHealth]:
    """Per dataset, how its checks' latest results stand."""
    return await watched(info, info.context.services.quality.dataset_health())
