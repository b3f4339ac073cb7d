"""The analytics service: its Protocol and the implementation over the SQL store."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.services.analytics.catalog import AnalyticsCatalog
from dataintel.services.analytics.planner import AnalyticsQuery, Plan, plan_query
from dataintel.services.analytics.results import AnalyticsResult, shape_result
from dataintel.services.analytics.rollups import (
    current_changes,
    state_statement,
    states_of,
    touched_span,
)
from dataintel.services.analytics.routing import (
    Decision,
    candidates,
    decide,
    range_of,
)
from dataintel.services.analytics.sql import rows_statement, totals_statement
from dataintel.store.guarded import StoreEngine, read


class AnalyticsService(Protocol):
    """Measures by dimensions and time over the catalog in force."""

    @property
    def catalog(self) -> AnalyticsCatalog: ...

    async def query(self, query: AnalyticsQuery) -> AnalyticsResult: ...


class SqlAnalyticsService:
    """AnalyticsService over the SQL store: two statements per query, rows and totals.

    With ``rollups``, a query that a rollup covers first checks in the same connection that
    the rollup's partitions are current (the recorded state and the store's write counters:
    one small indexed read each), then reads the smallest current rollup instead of the
    source's rows.
    """

    def __init__(
        self, engine: StoreEngine, catalog: AnalyticsCatalog, *, rollups: bool = False
    ) -> None:
        self._engine = engine
        self._catalog = catalog
        self._rollups = rollups

    @property
    def catalog(self) -> AnalyticsCatalog:
        """The catalog queries are checked against."""
        return self._catalog

    async def query(self, query: AnalyticsQuery) -> AnalyticsResult:
        """Runs a query; BAD_USER_INPUT when it does not fit the catalog."""
        plan = plan_query(self._catalog, query)
        dialect = self._engine.dialect.name

        async def rows_and_totals(connection: AsyncConnection) -> AnalyticsResult:
            decision = await self._route(connection, plan) if self._rollups else None
            routed = plan
            if decision is not None and decision.rollups:
                routed = dataclasses.replace(plan, rollups=decision.rollups)
            built_at: datetime | None = decision.built_at if decision is not None else None
            rows = (await connection.execute(rows_statement(routed, dialect))).all()
            totals = (await connection.execute(totals_statement(routed, dialect))).one()
            return shape_result(routed, rows, totals, built_at)

        return await read(self._engine, rows_and_totals)

    async def _route(self, connection: AsyncConnection, plan: Plan) -> Decision | None:
        """Which sources rollups answer; None when none covers the query or none is built."""
        found = candidates(plan)
        if not found:
            return None
        span = range_of(plan)
        rollups = [candidate.rollup for candidate in found]
        statement = state_statement(rollups, span)
        recorded = states_of((await connection.execute(statement)).all())
        if not recorded:
            # Never built (`dataintel analytics rollups build`), or not in this range.
            return None
        # Only the counters of the days the range's partitions cover: a range scan.
        counted = None if span is None else touched_span(rollups, span)
        current = await current_changes(connection, plan.catalog, rollups, counted)
        return decide(found, span, current, recorded)
