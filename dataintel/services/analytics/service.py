"""The analytics service: its Protocol and the implementation over the SQL store."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.services.analytics.catalog import AnalyticsCatalog
from dataintel.services.analytics.planner import AnalyticsQuery, plan_query
from dataintel.services.analytics.results import AnalyticsResult, shape_result
from dataintel.services.analytics.sql import rows_statement, totals_statement
from dataintel.store.guarded import StoreEngine, read


class AnalyticsService(Protocol):
    """Measures by dimensions and time over the catalog in force."""

    @property
    def catalog(self) -> AnalyticsCatalog: ...

    async def query(self, query: AnalyticsQuery) -> AnalyticsResult: ...


class SqlAnalyticsService:
    """AnalyticsService over the SQL store: two statements per query, rows and totals."""

    def __init__(self, engine: StoreEngine, catalog: AnalyticsCatalog) -> None:
        self._engine = engine
        self._catalog = catalog

    @property
    def catalog(self) -> AnalyticsCatalog:
        """The catalog queries are checked against."""
        return self._catalog

    async def query(self, query: AnalyticsQuery) -> AnalyticsResult:
        """Runs a query; BAD_USER_INPUT when it does not fit the catalog."""
        plan = plan_query(self._catalog, query)
        dialect = self._engine.dialect.name

        async def rows_and_totals(connection: AsyncConnection) -> AnalyticsResult:
            rows = (await connection.execute(rows_statement(plan, dialect))).all()
            totals = (await connection.execute(totals_statement(plan, dialect))).one()
            return shape_result(plan, rows, totals)

        return await read(self._engine, rows_and_totals)
