"""The quality service: runs declared checks, stores every result, reads history and health.

A run happens in the request (or CLI command) that asks for it: there is no job queue yet.
Each check runs on its own; one that cannot run (its SQL fails, or there is nothing to
measure) is an ERROR result with the reason and the others go on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dataintel.errors import BadUserInputError
from dataintel.services.pagination import (
    Page,
    PageRequest,
)
from dataintel.services.quality.catalog import CheckDefinition
from dataintel.services.quality.measure import (
    CheckCannotRun,
    Measurement,
    Status,
    UnexpectedValue,
    error_measurement,
    measure,
)
from dataintel.services.run_history import RunHistory
from dataintel.store import tables
from dataintel.store.guarded import StoreEngine, batch, read_batch, statement_failure
from dataintel.store.rows import AnyRow

_DOMAIN = "quality"
_RESULTS = tables.quality_results
STATUS_ORDER: tuple[Status, ...] = ("PASS", "WARN", "FAIL", "ERROR")
"""From best to worst: a dataset's health is the worst latest status of its checks."""


@dataclass(frozen=True, slots=True)
class CheckSelection:
    """Which checks to run: by ids, by dataset and/or by tag (all given must hold)."""

    check_ids: tuple[str, ...] | None = None
    dataset: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class QualityResult:
    """One stored result of one check."""

    id: int
    run_id: str
    check_id: str
    dataset: str
    started_at: datetime
    duration_ms: float
    measurement: Measurement

    @property
    def status(self) -> Status:
        """PASS, WARN, FAIL or ERROR."""
        return self.measurement.status


@dataclass(frozen=True, slots=True)
class DatasetHealth:
    """A dataset's checks and how their latest results stand."""

    dataset: str
    checks: int
    status_counts: Mapping[Status, int]
    """Latest results by status; checks that never ran are not counted."""
    never_run: int
    worst: Status | None


class QualityService(Protocol):
    """Declared checks, their runs, history and the datasets' health."""

    @property
    def checks(self) -> Mapping[str, CheckDefinition]: ...

    def select(self, selection: CheckSelection) -> list[CheckDefinition]: ...

    async def run(self, selection: CheckSelection) -> tuple[str, list[QualityResult]]: ...

    async def latest(self, check_ids: Sequence[str]) -> list[QualityResult | None]: ...

    async def history(self, check_id: str, page: PageRequest) -> Page[QualityResult]: ...

    async def count_history(self, check_id: str) -> int: ...

    async def results(self, result_ids: Sequence[int]) -> list[QualityResult | None]: ...

    async def dataset_health(self) -> list[DatasetHealth]: ...


def _measurement_json(measurement: Measurement) -> str:
    return orjson.dumps(asdict(measurement)).decode()


def _measurement_from(text: str) -> Measurement:
    raw: dict[str, Any] = orjson.loads(text)
    raw["unexpected_sample"] = tuple(UnexpectedValue(**item) for item in raw["unexpected_sample"])
    return Measurement(**raw)


def _result_from(row: AnyRow) -> QualityResult:
    return QualityResult(
        id=row.id,
        run_id=row.run_id,
        check_id=row.check_id,
        dataset=row.dataset,
        started_at=row.started_at,
        duration_ms=row.duration_ms,
        measurement=_measurement_from(row.result),
    )


class SqlQualityService:
    """QualityService over the SQL store; every check is measured in the database."""

    def __init__(
        self,
        engine: StoreEngine,
        checks: Mapping[str, CheckDefinition],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._checks = dict(checks)
        self._clock = clock
        self._history = RunHistory(engine, _RESULTS, "check_id", _result_from)

    @property
    def checks(self) -> Mapping[str, CheckDefinition]:
        """The declared checks by id, in declaration order."""
        return self._checks

    def select(self, selection: CheckSelection) -> list[CheckDefinition]:
        """The checks a selection names; BAD_USER_INPUT for an unknown id or none selected."""
        chosen = list(self._checks.values())
        if selection.check_ids is not None:
            unknown = [i for i in selection.check_ids if i not in self._checks]
            if unknown:
                raise BadUserInputError(
                    f"Unknown quality checks: {', '.join(unknown)}; checks:"
                    f" {', '.join(self._checks)}.",
                    domain=_DOMAIN,
                )
            wanted = set(selection.check_ids)
            chosen = [check for check in chosen if check.id in wanted]
        if selection.dataset is not None:
            chosen = [check for check in chosen if check.dataset == selection.dataset]
        if selection.tag is not None:
            chosen = [check for check in chosen if selection.tag in check.tags]
        if not chosen:
            raise BadUserInputError("No quality check matches the selection.", domain=_DOMAIN)
        return chosen

    async def _measure(self, check: CheckDefinition, now: datetime) -> Measurement:
        async def work(connection: AsyncConnection) -> Measurement:
            # Caught inside the guarded block: a check's own bad SQL is no store outage.
            try:
                return await measure(connection, check, now)
            except CheckCannotRun as nothing:
                return error_measurement(str(nothing))
            except sa.exc.DBAPIError as failure:
                reason = statement_failure(failure)
                if reason is None:
                    raise
                return error_measurement(reason)

        return await read_batch(self._engine, work)

    async def run(self, selection: CheckSelection) -> tuple[str, list[QualityResult]]:
        """Runs the selected checks one by one now and stores every result under one run id."""
        chosen = self.select(selection)
        run_id = str(uuid.uuid4())
        measured: list[tuple[CheckDefinition, datetime, float, Measurement]] = []
        for check in chosen:
            started_at = self._clock()
            clock = time.perf_counter()
            measurement = await self._measure(check, started_at)
            duration_ms = (time.perf_counter() - clock) * 1000
            measured.append((check, started_at, duration_ms, measurement))
        results: list[QualityResult] = []
        async with batch(self._engine) as connection:
            for check, started_at, duration_ms, measurement in measured:
                values = {
                    "run_id": run_id,
                    "check_id": check.id,
                    "dataset": check.dataset,
                    "status": measurement.status,
                    "started_at": started_at,
                    "duration_ms": duration_ms,
                    "result": _measurement_json(measurement),
                }
                result_id = (
                    await connection.execute(
                        sa.insert(_RESULTS).values(**values).returning(_RESULTS.c.id)
                    )
                ).scalar_one()
                results.append(
                    QualityResult(
                        result_id,
                        run_id,
                        check.id,
                        check.dataset,
                        started_at,
                        duration_ms,
                        measurement,
                    )
                )
        return run_id, results

    async def latest(self, check_ids: Sequence[str]) -> list[QualityResult | None]:
        """The latest result of each check, in the order asked (None: never ran)."""
        return await self._history.latest(check_ids)

    async def history(self, check_id: str, page: PageRequest) -> Page[QualityResult]:
        """A check's results, newest first."""
        return await self._history.page(check_id, page)

    async def count_history(self, check_id: str) -> int:
        """How many results a check has."""
        return await self._history.count(check_id)

    async def results(self, result_ids: Sequence[int]) -> list[QualityResult | None]:
        """Results by id, in the order asked (None: no such result)."""
        return await self._history.by_ids(result_ids)

    async def dataset_health(self) -> list[DatasetHealth]:
        """Per dataset with checks, in name order: the latest results' statuses."""
        checks = list(self._checks.values())
        latest = await self.latest([check.id for check in checks])
        health: list[DatasetHealth] = []
        for dataset in sorted({check.dataset for check in checks}):
            statuses = [
                result.status
                for check, result in zip(checks, latest, strict=True)
                if check.dataset == dataset and result is not None
            ]
            total = sum(1 for check in checks if check.dataset == dataset)
            counts = {status: statuses.count(status) for status in STATUS_ORDER}
            worst = max(statuses, key=STATUS_ORDER.index) if statuses else None
            health.append(DatasetHealth(dataset, total, counts, total - len(statuses), worst))
        return health
