"""Resolvers of the analytics domain: the catalog in force and queries over it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataintel.resolvers.freshness import watched
from dataintel.services.analytics import AnalyticsCatalog, AnalyticsQuery, AnalyticsResult

if TYPE_CHECKING:
    from dataintel.resolvers.info import Info


def catalog(info: Info) -> AnalyticsCatalog:
    """The measures, dimensions and sources queries may use."""
    return info.context.services.analytics.catalog


async def run(info: Info, query: AnalyticsQuery) -> AnalyticsResult:
    """The rows and totals of one analytics query."""
    return await watched(info, info.context.services.analytics.query(query))
