"""The reconciliation service: runs declared comparisons, stores each report, reads history.

A run happens in the request (or CLI command) that asks for it: there is no job queue yet.
A comparison that cannot run (a query that fails, a column that is missing) is stored and
returned as an ERROR report with the database's reason; it raises nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import BadUserInputError, NotFoundError
from dataintel.services.pagination import (
    Page,
    PageRequest,
)
from dataintel.services.reconciliation.catalog import (
    MAXIMUM_SAMPLE_SIZE,
    ComparisonDefinition,
)
from dataintel.services.reconciliation.report import (
    ColumnReport,
    ReportCounts,
    Sample,
    SampleValue,
    SideReport,
    compute_report,
    with_overrides,
)
from dataintel.services.run_history import RunHistory
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, read_batch, statement_failure
from dataintel.store.rows import AnyRow

RunStatus = Literal["OK", "DISCREPANCIES", "ERROR"]
_DOMAIN = "reconciliation"
_RUNS = tables.reconciliation_runs


@dataclass(frozen=True, slots=True)
class ToleranceOverride:
    """A compared column's tolerances for one run; None keeps the declared one."""

    column: str
    abs_tolerance: float | None = None
    rel_tolerance: float | None = None


@dataclass(frozen=True, slots=True)
class ReconcileOverrides:
    """What one run changes of its comparison's declaration."""

    tolerances: tuple[ToleranceOverride, ...] = ()
    sample_size: int | None = None


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    """One stored run of a comparison: its report, or why it could not be made."""

    id: int
    comparison_id: str
    status: RunStatus
    requested_by: str
    started_at: datetime
    finished_at: datetime
    report: ReportCounts | None
    error: str | None

    @property
    def duration_ms(self) -> float:
        """How long the run took, in milliseconds."""
        return (self.finished_at - self.started_at).total_seconds() * 1000


class ReconciliationService(Protocol):
    """Declared comparisons, their runs and their history."""

    @property
    def comparisons(self) -> Mapping[str, ComparisonDefinition]: ...

    async def run(
        self, comparison_id: str, overrides: ReconcileOverrides, requested_by: str
    ) -> ReconciliationRun: ...

    async def latest(self, comparison_ids: Sequence[str]) -> list[ReconciliationRun | None]: ...

    async def history(self, comparison_id: str, page: PageRequest) -> Page[ReconciliationRun]: ...

    async def count_history(self, comparison_id: str) -> int: ...

    async def runs(self, run_ids: Sequence[int]) -> list[ReconciliationRun | None]: ...


def _report_json(report: ReportCounts) -> str:
    return orjson.dumps(asdict(report)).decode()


def _report_from(text: str) -> ReportCounts:
    data: dict[str, Any] = orjson.loads(text)

    def side(raw: dict[str, Any]) -> SideReport:
        return SideReport(**{**raw, "only_columns": tuple(raw["only_columns"])})

    def sample(raw: dict[str, Any]) -> Sample:
        return Sample(
            category=raw["category"],
            key=tuple(raw["key"]),
            left_rows=raw["left_rows"],
            right_rows=raw["right_rows"],
            values=tuple(SampleValue(**value) for value in raw["values"]),
        )

    return ReportCounts(
        left=side(data["left"]),
        right=side(data["right"]),
        only_left=data["only_left"],
        only_right=data["only_right"],
        matched=data["matched"],
        mismatched=data["mismatched"],
        columns=tuple(ColumnReport(**column) for column in data["columns"]),
        samples=tuple(sample(raw) for raw in data["samples"]),
    )


def _run_from(row: AnyRow) -> ReconciliationRun:
    return ReconciliationRun(
        id=row.id,
        comparison_id=row.comparison_id,
        status=row.status,
        requested_by=row.requested_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        report=_report_from(row.report) if row.report is not None else None,
        error=row.error,
    )


class SqlReconciliationService:
    """ReconciliationService over the SQL store; the comparisons run in the database."""

    def __init__(self, engine: StoreEngine, comparisons: Mapping[str, ComparisonDefinition]):
        self._engine = engine
        self._comparisons = dict(comparisons)
        self._history = RunHistory(engine, _RUNS, "comparison_id", _run_from)

    @property
    def comparisons(self) -> Mapping[str, ComparisonDefinition]:
        """The declared comparisons by id, in declaration order."""
        return self._comparisons

    def _comparison(
        self, comparison_id: str, overrides: ReconcileOverrides
    ) -> ComparisonDefinition:
        comparison = self._comparisons.get(comparison_id)
        if comparison is None:
            raise NotFoundError(
                f"There is no comparison '{comparison_id}';"
                f" comparisons: {', '.join(self._comparisons) or 'none'}.",
                domain=_DOMAIN,
            )
        size = overrides.sample_size
        if size is not None and not 0 <= size <= MAXIMUM_SAMPLE_SIZE:
            raise BadUserInputError(
                f"sampleSize must be between 0 and {MAXIMUM_SAMPLE_SIZE}.", domain=_DOMAIN
            )
        for override in overrides.tolerances:
            for value in (override.abs_tolerance, override.rel_tolerance):
                if value is not None and value < 0:
                    raise BadUserInputError("A tolerance cannot be negative.", domain=_DOMAIN)
        try:
            return with_overrides(
                comparison,
                [(o.column, o.abs_tolerance, o.rel_tolerance) for o in overrides.tolerances],
                size,
            )
        except KeyError as error:
            names = ", ".join(column.name for column in comparison.columns)
            raise BadUserInputError(
                f"Comparison '{comparison_id}' compares no column {error};"
                f" compared columns: {names}.",
                domain=_DOMAIN,
            ) from None
        except ValueError as error:
            raise BadUserInputError(f"{error}.", domain=_DOMAIN) from None

    async def run(
        self, comparison_id: str, overrides: ReconcileOverrides, requested_by: str
    ) -> ReconciliationRun:
        """Runs a comparison now, stores its report (or ERROR with the reason) and returns it."""
        comparison = self._comparison(comparison_id, overrides)
        started_at = datetime.now(UTC)
        clock = time.perf_counter()
        report: ReportCounts | None = None
        error: str | None = None

        async def compute(connection: AsyncConnection) -> ReportCounts | str:
            # Caught inside the guarded block: a comparison's own bad SQL is no store outage.
            try:
                return await compute_report(connection, comparison)
            except sa.exc.DBAPIError as failure:
                reason = statement_failure(failure)
                if reason is None:
                    raise
                return reason

        outcome = await read_batch(self._engine, compute)
        if isinstance(outcome, str):
            error = outcome
        else:
            report = outcome
        finished_at = started_at + _elapsed(clock)
        status: RunStatus = (
            "ERROR" if report is None else "DISCREPANCIES" if report.discrepancies else "OK"
        )
        values = {
            "comparison_id": comparison_id,
            "status": status,
            "requested_by": requested_by,
            "started_at": started_at,
            "finished_at": finished_at,
            "report": _report_json(report) if report is not None else None,
            "error": error,
        }
        async with self._engine.begin() as connection:
            run_id = (
                await connection.execute(sa.insert(_RUNS).values(**values).returning(_RUNS.c.id))
            ).scalar_one()
        return ReconciliationRun(
            run_id, comparison_id, status, requested_by, started_at, finished_at, report, error
        )

    async def latest(self, comparison_ids: Sequence[str]) -> list[ReconciliationRun | None]:
        """The last run of each comparison, in the order asked (None: never run)."""
        return await self._history.latest(comparison_ids)

    async def history(self, comparison_id: str, page: PageRequest) -> Page[ReconciliationRun]:
        """A comparison's runs, newest first."""
        return await self._history.page(comparison_id, page)

    async def count_history(self, comparison_id: str) -> int:
        """How many runs a comparison has."""
        return await self._history.count(comparison_id)

    async def runs(self, run_ids: Sequence[int]) -> list[ReconciliationRun | None]:
        """Runs by id, in the order asked (None: no such run)."""
        return await self._history.by_ids(run_ids)


def _elapsed(clock: float) -> timedelta:
    return timedelta(seconds=time.perf_counter() - clock)
