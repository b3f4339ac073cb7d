"""Reconciliation: declared key-based comparisons of two datasets, their runs and history.

Comparison ids are strings checked against the declarations, so that a comparison added in
YAML needs no schema change.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import strawberry

from dataintel.directives.auth import ANALYSTS
from dataintel.resolvers import reconciliation as resolvers
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
from dataintel.services import reconciliation as records


@strawberry.enum(description="Which dataset of a comparison.")
class ReconciliationSide(enum.Enum):
    LEFT = strawberry.enum_value("left", description="The first dataset.")
    RIGHT = strawberry.enum_value("right", description="The second dataset.")


@strawberry.enum(description="How a compared column's values are compared.")
class ReconciliationColumnKind(enum.Enum):
    NUMBER = strawberry.enum_value("number", description="Numbers, within a tolerance.")
    TIME = strawberry.enum_value("time", description="Moments, within a tolerance in seconds.")
    TEXT = strawberry.enum_value("text", description="Text, equal or not.")


@strawberry.enum(description="The outcome of a reconciliation run.")
class ReconciliationStatus(enum.Enum):
    OK = strawberry.enum_value("OK", description="Every row on both sides matched.")
    DISCREPANCIES = strawberry.enum_value(
        "DISCREPANCIES",
        description="Rows missing on a side, mismatched, or with NULL or duplicated keys.",
    )
    ERROR = strawberry.enum_value(
        "ERROR", description="The comparison could not run; `error` says why."
    )


@strawberry.enum(description="A kind of discrepancy that samples show.")
class ReconciliationSampleCategory(enum.Enum):
    ONLY_LEFT = strawberry.enum_value("only_left", description="A key only the left side has.")
    ONLY_RIGHT = strawberry.enum_value("only_right", description="A key only the right side has.")
    MISMATCHED = strawberry.enum_value(
        "mismatched", description="A key on both sides whose compared values differ."
    )
    DUPLICATE_LEFT = strawberry.enum_value(
        "duplicate_left", description="A key that several left rows hold (never paired)."
    )
    DUPLICATE_RIGHT = strawberry.enum_value(
        "duplicate_right", description="A key that several right rows hold (never paired)."
    )


@strawberry.type(description="One side's rows: a table (optionally filtered) or a SQL query.")
class ReconciliationDataset:
    table: str | None = strawberry.field(description="The table; null for a query.")
    where: str | None = strawberry.field(description="The SQL filter on the table, if any.")
    query: str | None = strawberry.field(description="The SQL query; null for a table.")

    @classmethod
    def from_record(cls, record: records.DatasetDefinition) -> ReconciliationDataset:
        return cls(table=record.table, where=record.where, query=record.query)


@strawberry.type(description="A join key column, named on each side.")
class ReconciliationKey:
    left: str = strawberry.field(description="The key column on the left.")
    right: str = strawberry.field(description="The key column on the right.")


@strawberry.type(description="A compared column: its names on each side and its tolerances.")
class ReconciliationColumn:
    name: str = strawberry.field(description="The name reports use.")
    left: str = strawberry.field(description="The column on the left.")
    right: str = strawberry.field(description="The column on the right.")
    kind: ReconciliationColumnKind = strawberry.field(description="How values are compared.")
    abs_tol: float = strawberry.field(
        description="Allowed absolute difference (seconds for times)."
    )
    rel_tol: float = strawberry.field(
        description="Allowed difference relative to the reference side's value."
    )

    @classmethod
    def from_record(cls, record: records.ColumnComparison) -> ReconciliationColumn:
        return cls(
            name=record.name,
            left=record.left,
            right=record.right,
            kind=ReconciliationColumnKind(record.kind),
            abs_tol=record.abs_tolerance,
            rel_tol=record.rel_tolerance,
        )


@strawberry.type(description="What one side of a run held and what of it could not be paired.")
class ReconciliationSideReport:
    dataset: str = strawberry.field(description="The dataset, as declared.")
    rows: int = strawberry.field(description="Every row of the side.")
    null_key_rows: int = strawberry.field(
        description="Rows with a NULL in a key column; never paired."
    )
    duplicate_keys: int = strawberry.field(
        description="Distinct keys that several rows of this side hold."
    )
    duplicate_rows: int = strawberry.field(
        description="Rows holding a duplicated key; never paired."
    )
    blocked_rows: int = strawberry.field(
        description="Rows whose key is unique here but duplicated on the other side; never paired."
    )
    only_columns: list[str] = strawberry.field(
        description="Columns the other side lacks (after the declared mappings)."
    )

    @classmethod
    def from_record(cls, record: records.SideReport) -> ReconciliationSideReport:
        return cls(
            dataset=record.dataset,
            rows=record.rows,
            null_key_rows=record.null_key_rows,
            duplicate_keys=record.duplicate_keys,
            duplicate_rows=record.duplicate_rows,
            blocked_rows=record.blocked_rows,
            only_columns=list(record.only_columns),
        )


@strawberry.type(description="How one compared column differed over the paired keys.")
class ReconciliationColumnReport:
    name: str = strawberry.field(description="The compared column's name.")
    kind: ReconciliationColumnKind = strawberry.field(description="How values were compared.")
    abs_tol: float = strawberry.field(description="The absolute tolerance this run used.")
    rel_tol: float = strawberry.field(description="The relative tolerance this run used.")
    mismatch_count: int = strawberry.field(
        description="Paired keys whose values differ beyond the tolerance or where exactly one"
        " side is NULL."
    )
    within_tolerance_count: int = strawberry.field(
        description="Paired keys whose values differ within the tolerance (not mismatches)."
    )
    null_diff: int = strawberry.field(
        description="Paired keys where exactly one side is NULL (NULL against NULL is equal)."
    )
    max_abs_diff: float | None = strawberry.field(
        description="Largest absolute difference where both values exist (seconds for"
        " times); null for text or when there is none."
    )

    @classmethod
    def from_record(cls, record: records.ColumnReport) -> ReconciliationColumnReport:
        return cls(
            name=record.name,
            kind=ReconciliationColumnKind(record.kind),
            abs_tol=record.abs_tolerance,
            rel_tol=record.rel_tolerance,
            mismatch_count=record.mismatch_count,
            within_tolerance_count=record.within_tolerance_count,
            null_diff=record.null_diff,
            max_abs_diff=record.max_abs_diff,
        )


@strawberry.type(description="A compared column's values on both sides of a sampled key.")
class ReconciliationSampleValue:
    column: str = strawberry.field(description="The compared column's name.")
    left: str | None = strawberry.field(description="The left value as text; null: NULL or none.")
    right: str | None = strawberry.field(description="The right value as text; null: NULL or none.")


@strawberry.type(description="One key of a discrepancy category, with both sides' values.")
class ReconciliationSample:
    category: ReconciliationSampleCategory = strawberry.field(
        description="The kind of discrepancy."
    )
    key: list[str] = strawberry.field(description="The key's values, as text, in key order.")
    left_rows: int = strawberry.field(description="Rows of the left side holding the key.")
    right_rows: int = strawberry.field(description="Rows of the right side holding the key.")
    values: list[ReconciliationSampleValue] = strawberry.field(
        description="The compared columns' values (for a duplicate: of no particular row)."
    )

    @classmethod
    def from_record(cls, record: records.Sample) -> ReconciliationSample:
        return cls(
            category=ReconciliationSampleCategory(record.category),
            key=list(record.key),
            left_rows=record.left_rows,
            right_rows=record.right_rows,
            values=[
                ReconciliationSampleValue(column=value.column, left=value.left, right=value.right)
                for value in record.values
            ],
        )


@strawberry.type(description="One stored run of a comparison: its report, or why it failed.")
class ReconciliationReport(Node):
    database_id: int = strawberry.field(description="The run's key in the store.")
    comparison_id: str = strawberry.field(description="The comparison that ran.")
    status: ReconciliationStatus = strawberry.field(description="The run's outcome.")
    error: str | None = strawberry.field(description="Why an ERROR run could not run.")
    requested_by: str = strawberry.field(description="The user id that asked, or anonymous.")
    started_at: datetime = strawberry.field(description="When the run started.")
    finished_at: datetime = strawberry.field(description="When it ended.")
    duration_ms: float = strawberry.field(description="How long it took, in milliseconds.")
    left_rows: int | None = strawberry.field(description="Rows of the left dataset.")
    right_rows: int | None = strawberry.field(description="Rows of the right dataset.")
    only_left: int | None = strawberry.field(
        description="Keys (unique on the left) that the right side lacks."
    )
    only_right: int | None = strawberry.field(
        description="Keys (unique on the right) that the left side lacks."
    )
    matched: int | None = strawberry.field(
        description="Keys on both sides (once each) whose compared values agree within tolerance."
    )
    mismatched: int | None = strawberry.field(
        description="Keys on both sides (once each) where some compared column differs."
    )
    match_rate: float | None = strawberry.field(
        description="matched over the row count of the larger side (0..1); null when both"
        " are empty or the run failed."
    )
    left: ReconciliationSideReport | None = strawberry.field(
        description="The left side's rows and those that could not be paired."
    )
    right: ReconciliationSideReport | None = strawberry.field(
        description="The right side's rows and those that could not be paired."
    )
    columns: list[ReconciliationColumnReport] = strawberry.field(
        description="Per compared column, how it differed; empty for a failed run."
    )
    all_samples: strawberry.Private[list[ReconciliationSample]]

    @strawberry.field(
        description="Sampled keys, by category then key, at most the comparison's sample"
        " size per category."
    )
    def samples(
        self,
        category: Annotated[
            ReconciliationSampleCategory | None,
            strawberry.argument(description="Only this category; none: every category."),
        ] = None,
    ) -> list[ReconciliationSample]:
        return [
            sample for sample in self.all_samples if category is None or sample.category == category
        ]

    @classmethod
    def from_record(cls, record: records.ReconciliationRun) -> ReconciliationReport:
        report = record.report
        return cls(
            id=global_id("ReconciliationReport", record.id),
            database_id=record.id,
            comparison_id=record.comparison_id,
            status=ReconciliationStatus(record.status),
            error=record.error,
            requested_by=record.requested_by,
            started_at=record.started_at,
            finished_at=record.finished_at,
            duration_ms=round(record.duration_ms, 3),
            left_rows=report.left.rows if report else None,
            right_rows=report.right.rows if report else None,
            only_left=report.only_left if report else None,
            only_right=report.only_right if report else None,
            matched=report.matched if report else None,
            mismatched=report.mismatched if report else None,
            match_rate=report.match_rate if report else None,
            left=ReconciliationSideReport.from_record(report.left) if report else None,
            right=ReconciliationSideReport.from_record(report.right) if report else None,
            columns=[ReconciliationColumnReport.from_record(c) for c in report.columns]
            if report
            else [],
            all_samples=[ReconciliationSample.from_record(s) for s in report.samples]
            if report
            else [],
        )


@strawberry.type(description="A declared comparison of two datasets by key, with its last run.")
class Reconciliation(Node):
    database_id: str = strawberry.field(
        description="The comparison's id, as declared (what reconcile and the CLI take)."
    )
    description: str = strawberry.field(description="What the comparison checks.")
    left: ReconciliationDataset = strawberry.field(description="The first dataset.")
    right: ReconciliationDataset = strawberry.field(description="The second dataset.")
    keys: list[ReconciliationKey] = strawberry.field(description="The join key, column by column.")
    columns: list[ReconciliationColumn] = strawberry.field(
        description="The compared columns and their tolerances."
    )
    reference: ReconciliationSide = strawberry.field(
        description="The side relative tolerances are relative to."
    )
    sample_size: int = strawberry.field(description="Samples kept per category.")
    last_report: ReconciliationReport | None = strawberry.field(
        description="The latest run; null when it never ran."
    )

    @strawberry.field(description="The comparison's runs, newest first.")
    async def history(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        last: LastArgument = None,
        before: BeforeArgument = None,
    ) -> Connection[ReconciliationReport]:
        return await history_connection(
            info,
            resolvers.history,
            self.database_id,
            ReconciliationReport.from_record,
            first,
            after,
            last,
            before,
        )

    @classmethod
    def from_record(
        cls, record: records.ComparisonDefinition, last: records.ReconciliationRun | None
    ) -> Reconciliation:
        return cls(
            id=global_id("Reconciliation", record.id),
            database_id=record.id,
            description=record.description,
            left=ReconciliationDataset.from_record(record.left),
            right=ReconciliationDataset.from_record(record.right),
            keys=[ReconciliationKey(left=key.left, right=key.right) for key in record.keys],
            columns=[ReconciliationColumn.from_record(column) for column in record.columns],
            reference=ReconciliationSide(record.reference),
            sample_size=record.sample_size,
            last_report=ReconciliationReport.from_record(last) if last else None,
        )


@strawberry.input(description="A compared column's tolerances for one run.")
class ReconciliationToleranceInput:
    column: str = strawberry.field(description="The compared column's name.")
    abs_tol: float | None = strawberry.field(
        default=None, description="Allowed absolute difference; none: as declared."
    )
    rel_tol: float | None = strawberry.field(
        default=None, description="Allowed relative difference; none: as declared."
    )


@strawberry.input(description="What one run changes of its comparison's declaration.")
class ReconcileOverridesInput:
    tolerances: list[ReconciliationToleranceInput] = strawberry.field(
        default_factory=list, description="Tolerances of some compared columns."
    )
    sample_size: int | None = strawberry.field(
        default=None, description="Samples per category (0 to 100); none: as declared."
    )

    def to_record(self) -> records.ReconcileOverrides:
        return records.ReconcileOverrides(
            tolerances=tuple(
                records.ToleranceOverride(item.column, item.abs_tol, item.rel_tol)
                for item in self.tolerances
            ),
            sample_size=self.sample_size,
        )


ComparisonIdArgument = Annotated[
    strawberry.ID,
    strawberry.argument(description="The comparison's global id, or its declared id."),
]


@strawberry.type
class ReconciliationQuery:
    @strawberry.field(
        description="Every declared comparison with its last run.", directives=[ANALYSTS]
    )
    async def reconciliations(self, info: Info) -> list[Reconciliation] | None:
        found = await resolvers.comparisons(info)
        return [Reconciliation.from_record(definition, last) for definition, last in found]

    @strawberry.field(
        description="One declared comparison with its last run and history; null with"
        " NOT_FOUND for an unknown id.",
        directives=[ANALYSTS],
    )
    async def reconciliation(self, info: Info, id: ComparisonIdArgument) -> Reconciliation | None:
        definition, last = await resolvers.comparison(info, declared_key(id, "Reconciliation"))
        return Reconciliation.from_record(definition, last)


@strawberry.type
class ReconciliationMutation:
    @strawberry.mutation(
        description="Runs a comparison now, in this request (there is no job queue yet), and"
        " stores its report. A comparison that cannot run is an ERROR report with its reason;"
        " an unknown id is NOT_FOUND, a bad override BAD_USER_INPUT.",
        directives=[ANALYSTS],
    )
    async def reconcile(
        self,
        info: Info,
        comparison_id: ComparisonIdArgument,
        overrides: Annotated[
            ReconcileOverridesInput | None,
            strawberry.argument(description="Tolerances and sample size for this run only."),
        ] = None,
    ) -> ReconciliationReport | None:
        chosen = overrides.to_record() if overrides else records.ReconcileOverrides()
        key = declared_key(comparison_id, "Reconciliation")
        run = await resolvers.reconcile(info, key, chosen)
        return ReconciliationReport.from_record(run)
