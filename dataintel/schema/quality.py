"""Data quality: declared checks on datasets, their results (Great Expectations' shape),
history and each dataset's health.

Check ids, datasets and tags are strings checked against the declarations, so that a check
added in YAML needs no schema change.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from dataintel.directives.auth import ANALYSTS
from dataintel.resolvers import quality as resolvers
from dataintel.resolvers.global_ids import declared_key
from dataintel.resolvers.info import Info
from dataintel.schema.node import Node, global_id
from dataintel.schema.pagination import (
    AfterArgument,
    BeforeArgument,
    Connection,
    FirstArgument,
    LastArgument,
)
from dataintel.schema.run_history import history_connection
from dataintel.services import quality as records


@strawberry.enum(description="What a quality check verifies.")
class QualityCheckType(enum.Enum):
    NOT_NULL = strawberry.enum_value("not_null", description="The column holds no NULL.")
    UNIQUE = strawberry.enum_value(
        "unique", description="No two rows share the column's (or columns') values."
    )
    BETWEEN = strawberry.enum_value(
        "between", description="Values lie between min and max (inclusive unless strict)."
    )
    IN_SET = strawberry.enum_value("in_set", description="Values are among the declared ones.")
    REGEX = strawberry.enum_value(
        "regex", description="Values (as text) contain a match of the regular expression."
    )
    ROW_COUNT_BETWEEN = strawberry.enum_value(
        "row_count_between", description="The row count lies between min and max."
    )
    FRESHNESS = strawberry.enum_value(
        "freshness", description="The latest value of a time column is recent enough."
    )
    REFERENTIAL = strawberry.enum_value(
        "referential", description="Values exist in another table's column."
    )


@strawberry.enum(description="What a failing check reports.")
class QualitySeverity(enum.Enum):
    WARN = strawberry.enum_value("warn", description="A failure is a WARN.")
    FAIL = strawberry.enum_value("fail", description="A failure is a FAIL.")


@strawberry.enum(description="The outcome of a quality check.")
class QualityStatus(enum.Enum):
    PASS = strawberry.enum_value("PASS", description="As expected.")
    WARN = strawberry.enum_value("WARN", description="Not as expected, at warn severity.")
    FAIL = strawberry.enum_value("FAIL", description="Not as expected.")
    ERROR = strawberry.enum_value(
        "ERROR", description="The check could not run; `reason` says why."
    )


@strawberry.type(description="An unexpected value and how many rows hold it.")
class QualityUnexpectedValue:
    value: str = strawberry.field(
        description="The value as text (a unique check's columns joined by ', ')."
    )
    count: int = strawberry.field(description="Rows holding it.")


@strawberry.type(description="One result of one quality check (Great Expectations' shape).")
class QualityResult(Node):
    database_id: int = strawberry.field(description="The result's key in the store.")
    run_id: str = strawberry.field(description="The run it belongs to (shared by its checks).")
    check_id: str = strawberry.field(description="The check that ran.")
    dataset: str = strawberry.field(description="The dataset (table) it checked.")
    status: QualityStatus = strawberry.field(description="PASS, WARN, FAIL or ERROR.")
    reason: str | None = strawberry.field(description="Why an ERROR check could not run.")
    observed_value: float | None = strawberry.field(
        description="Unexpected rows (row checks), distinct duplicated values (unique), the"
        " row count (row_count_between) or the latest value's age in seconds (freshness)."
    )
    element_count: int | None = strawberry.field(description="Rows checked (after `where`).")
    null_count: int | None = strawberry.field(
        description="Rows with a NULL in the column (any of the columns for unique)."
    )
    unexpected_count: int | None = strawberry.field(
        description="Unexpected rows (for unique: the rows of duplicated groups). NULLs are"
        " never unexpected except for not_null."
    )
    unexpected_percent: float | None = strawberry.field(
        description="unexpectedCount over the non-null rows (over every row for not_null),"
        " 0 to 100; null when there are none."
    )
    duplicated_values: int | None = strawberry.field(
        description="unique only: distinct values that several rows hold."
    )
    unexpected_sample: list[QualityUnexpectedValue] = strawberry.field(
        description="Up to 20 unexpected values with their row counts, most frequent first."
    )
    started_at: datetime = strawberry.field(description="When the check started.")
    duration_ms: float = strawberry.field(description="How long it took, in milliseconds.")

    @classmethod
    def from_record(cls, record: records.QualityResult) -> QualityResult:
        measured = record.measurement
        return cls(
            id=global_id("QualityResult", record.id),
            database_id=record.id,
            run_id=record.run_id,
            check_id=record.check_id,
            dataset=record.dataset,
            status=QualityStatus(measured.status),
            reason=measured.reason,
            observed_value=measured.observed_value,
            element_count=measured.element_count,
            null_count=measured.null_count,
            unexpected_count=measured.unexpected_count,
            unexpected_percent=measured.unexpected_percent,
            duplicated_values=measured.duplicated_values,
            unexpected_sample=[
                QualityUnexpectedValue(value=item.value, count=item.count)
                for item in measured.unexpected_sample
            ],
            started_at=record.started_at,
            duration_ms=round(record.duration_ms, 3),
        )


@strawberry.type(description="A declared quality check with its latest result.")
class QualityCheck(Node):
    database_id: str = strawberry.field(
        description="The check's stable id, as declared (what checkIds and the CLI take)."
    )
    description: str = strawberry.field(description="What the check expects.")
    dataset: str = strawberry.field(description="The table it checks.")
    type: QualityCheckType = strawberry.field(description="What it verifies.")
    severity: QualitySeverity = strawberry.field(description="What a failure reports.")
    tags: list[str] = strawberry.field(description="Tags to run checks by.")
    columns: list[str] = strawberry.field(description="The checked column(s); none for a count.")
    where: str | None = strawberry.field(description="The SQL filter on the rows, if any.")
    pattern: str | None = strawberry.field(description="A regex check's regular expression.")
    mostly: float = strawberry.field(
        description="Share (0..1) of non-null rows that must be as expected (row checks)."
    )
    latest_result: QualityResult | None = strawberry.field(
        description="The latest result; null when it never ran."
    )

    @strawberry.field(description="The check's results, newest first.")
    async def history(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
    ) -> Connection[QualityResult]:
        return await history_connection(
            info,
            resolvers.history,
            self.database_id,
            QualityResult.from_record,
            first,
            after,
            last,
            before,
        )

    @classmethod
    def from_record(
        cls, record: records.CheckDefinition, latest: records.QualityResult | None
    ) -> QualityCheck:
        return cls(
            id=global_id("QualityCheck", record.id),
            database_id=record.id,
            description=record.description,
            dataset=record.dataset,
            type=QualityCheckType(record.type),
            severity=QualitySeverity(record.severity),
            tags=list(record.tags),
            columns=list(record.columns),
            where=record.where,
            pattern=record.pattern,
            mostly=record.mostly,
            latest_result=QualityResult.from_record(latest) if latest else None,
        )


@strawberry.type(description="One runQualityChecks: its id and every check's result.")
class QualityRun:
    id: strawberry.ID = strawberry.field(description="The run's id, shared by its results.")
    results: list[QualityResult] = strawberry.field(description="One result per check run.")

    @strawberry.field(description="Whether no check failed or errored (warnings allowed).")
    def passed(self) -> bool:
        return all(
            result.status in (QualityStatus.PASS, QualityStatus.WARN) for result in self.results
        )


@strawberry.type(description="How many of a dataset's checks stand at a status.")
class QualityStatusCount:
    status: QualityStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Checks whose latest result has it.")


@strawberry.type(description="A dataset's checks and how their latest results stand.")
class DatasetHealth:
    dataset: str = strawberry.field(description="The table.")
    checks: int = strawberry.field(description="Declared checks on it.")
    never_run: int = strawberry.field(description="Of those, checks that never ran.")
    status: QualityStatus | None = strawberry.field(
        description="The worst latest status (ERROR > FAIL > WARN > PASS); null: none ran."
    )
    counts: list[QualityStatusCount] = strawberry.field(
        description="Latest results by status, PASS to ERROR."
    )

    @classmethod
    def from_record(cls, record: records.DatasetHealth) -> DatasetHealth:
        return cls(
            dataset=record.dataset,
            checks=record.checks,
            never_run=record.never_run,
            status=QualityStatus(record.worst) if record.worst else None,
            counts=[
                QualityStatusCount(status=QualityStatus(status), count=count)
                for status, count in record.status_counts.items()
            ],
        )


@strawberry.input(
    description="Which checks to run: every one given must hold; none given: every check."
)
class RunQualityChecksInput:
    check_ids: list[str] | None = strawberry.field(default=None, description="These checks.")
    dataset: str | None = strawberry.field(default=None, description="Checks on this table.")
    tag: str | None = strawberry.field(default=None, description="Checks with this tag.")

    def to_record(self) -> records.CheckSelection:
        return records.CheckSelection(
            check_ids=tuple(self.check_ids) if self.check_ids is not None else None,
            dataset=self.dataset,
            tag=self.tag,
        )


@strawberry.type
class QualityQuery:
    @strawberry.field(
        description="Every declared quality check with its latest result.", directives=[ANALYSTS]
    )
    async def quality_checks(self, info: Info) -> list[QualityCheck] | None:
        found = await resolvers.checks(info)
        return [QualityCheck.from_record(definition, latest) for definition, latest in found]

    @strawberry.field(
        description="One quality check with its latest result and history; null with"
        " NOT_FOUND for an unknown id.",
        directives=[ANALYSTS],
    )
    async def quality_check(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="The check's global id, or its declared id."),
        ],
    ) -> QualityCheck | None:
        definition, latest = await resolvers.check(info, declared_key(id, "QualityCheck"))
        return QualityCheck.from_record(definition, latest)

    @strawberry.field(
        description="Per dataset with checks, how their latest results stand.",
        directives=[ANALYSTS],
    )
    async def dataset_health(self, info: Info) -> list[DatasetHealth] | None:
        return [DatasetHealth.from_record(item) for item in await resolvers.dataset_health(info)]


@strawberry.type
class QualityMutation:
    @strawberry.mutation(
        description="Runs quality checks now, in this request (there is no job queue yet), and"
        " stores every result. A check that cannot run is an ERROR result with its reason; the"
        " others still run. An unknown id, or a selection of no check, is BAD_USER_INPUT.",
        directives=[ANALYSTS],
    )
    async def run_quality_checks(
        self,
        info: Info,
        input: Annotated[
            RunQualityChecksInput | None,
            strawberry.argument(description="Which checks; none: every declared check."),
        ] = None,
    ) -> QualityRun | None:
        selection = input.to_record() if input else records.CheckSelection()
        run_id, results = await resolvers.run(info, selection)
        return QualityRun(
            id=strawberry.ID(run_id), results=[QualityResult.from_record(r) for r in results]
        )
