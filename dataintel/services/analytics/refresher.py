"""A task that refreshes every rollup's changed partitions on an interval, in process.

Off unless DATAINTEL_ANALYTICS_ROLLUP_REFRESH_SECONDS is above 0. There are no background
jobs yet: each server that enables it refreshes on its own (a partition swap is one
transaction, so two servers refreshing at once cost work, never a wrong answer).
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.observability.logging import get_logger
from dataintel.services.analytics.catalog import AnalyticsCatalog
from dataintel.services.analytics.rollups import RefreshSummary, refresh_rollups
from dataintel.store.diagnosis import STORE_FAILURES

_log = get_logger("dataintel.analytics")


class RollupRefresher:
    """Refreshes the catalog's rollups every ``interval_seconds`` while started."""

    def __init__(
        self, engine: AsyncEngine, catalog: AnalyticsCatalog, interval_seconds: float
    ) -> None:
        self._engine = engine
        self._catalog = catalog
        self._interval = interval_seconds
        self._failing = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts refreshing in the background."""
        self._task = asyncio.create_task(self._run(), name="analytics-rollup-refresher")

    async def aclose(self) -> None:
        """Stops, letting a refresh in flight finish its partition (never cancelled mid-swap)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def refresh(self) -> list[RefreshSummary]:
        """One round: the changed partitions of every rollup."""
        summaries = await refresh_rollups(self._engine, self._catalog)
        for summary in summaries:
            if summary.rebuilt or summary.removed:
                _log.info(
                    "rollup refreshed",
                    rollup=summary.rollup,
                    rebuilt=list(summary.rebuilt),
                    removed=list(summary.removed),
                )
        return summaries

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.refresh()
                self._failing = False
            except Exception as error:
                # Logged once per outage; queries meanwhile read raw rows (stale partitions
                # are never routed), so a failing refresh costs speed, not correctness.
                if not self._failing:
                    level = _log.warning if isinstance(error, STORE_FAILURES) else _log.error
                    level("rollup refresh failed", error=" ".join(str(error).split()))
                self._failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
