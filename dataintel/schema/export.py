"""Export: datasets and analytics results as CSV, NDJSON or Parquet files, made by a job."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from dataintel.directives.auth import ANALYSTS
from dataintel.directives.rate_limit import RateLimit, RateLimitPer
from dataintel.resolvers import export as resolvers
from dataintel.resolvers.info import Info
from dataintel.schema.analytics import AnalyticsQueryInput
from dataintel.schema.jobs import Job
from dataintel.services.export import ExportRequest

EXPORT_RATE_LIMIT = RateLimit(limit=10, window=60, per=RateLimitPer.VIEWER)


@strawberry.enum(description="What to export.")
class ExportDatasetName(enum.Enum):
    ORDERS = strawberry.enum_value(
        "orders", description="Orders with their items, one row per item (personal)."
    )
    CUSTOMERS = strawberry.enum_value("customers", description="Customers (personal).")
    EVENTS = strawberry.enum_value("events", description="Events (personal).")
    LEDGER = strawberry.enum_value("ledger", description="The finance ledger's entries.")
    FEATURE_VALUES = strawberry.enum_value(
        "feature_values", description="Materialized feature values (personal)."
    )
    ANALYTICS = strawberry.enum_value(
        "analytics", description="The result rows of an analytics query (give `analytics`)."
    )


@strawberry.enum(description="The files' format.")
class ExportFormat(enum.Enum):
    CSV = strawberry.enum_value("CSV", description="RFC 4180 CSV, a header line in every part.")
    NDJSON = strawberry.enum_value("NDJSON", description="One JSON object per line.")
    PARQUET = strawberry.enum_value("PARQUET", description="Apache Parquet, typed columns.")


@strawberry.enum(description="How the files are compressed.")
class ExportCompression(enum.Enum):
    NONE = strawberry.enum_value("NONE", description="Not compressed.")
    GZIP = strawberry.enum_value(
        "GZIP", description="gzip files (.gz) for CSV and NDJSON; Parquet's gzip codec."
    )


@strawberry.input(description="What to export, how, and in parts of how many rows.")
class ExportDatasetInput:
    dataset: ExportDatasetName = strawberry.field(description="The dataset.")
    format: ExportFormat = strawberry.field(default=ExportFormat.CSV, description="The format.")
    compression: ExportCompression = strawberry.field(
        default=ExportCompression.NONE, description="Compression."
    )
    columns: list[str] | None = strawberry.field(
        default=None, description="These columns in this order; none: every column."
    )
    filter: JSON | None = strawberry.field(
        default=None,
        description='Conditions on columns, all of which must hold: {"status": "paid",'
        ' "placed_at": {"gte": "2026-01-01T00:00:00Z"}}; operators eq, ne, in, notIn, gt,'
        " gte, lt, lte, isNull (see docs/export.md).",
    )
    analytics: AnalyticsQueryInput | None = strawberry.field(
        default=None, description="The query whose rows the analytics dataset exports."
    )
    part_rows: int | None = strawberry.field(
        default=None, description="Rows per file; default from the server's settings."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="The same key (yours) returns the job it made the first time.",
    )


@strawberry.type
class ExportMutation:
    @strawberry.mutation(
        description="Starts an export job and answers it at once (QUEUED); poll job(id) until"
        " SUCCEEDED, then download its files. Datasets with personal data need the"
        " data_engineer or admin role (FORBIDDEN otherwise); an unknown column, a filter that"
        " does not parse or a bad partRows is BAD_USER_INPUT naming the field.",
        directives=[ANALYSTS, EXPORT_RATE_LIMIT],
    )
    async def export_dataset(
        self,
        info: Info,
        input: Annotated[ExportDatasetInput, strawberry.argument(description="The export.")],
    ) -> Job | None:
        request = ExportRequest(
            dataset=str(input.dataset.value),
            format=input.format.name,  # type: ignore[arg-type]
            compression=input.compression.name,  # type: ignore[arg-type]
            part_rows=input.part_rows
            if input.part_rows is not None
            else info.context.services.export.limits.default_part_rows,
            columns=tuple(input.columns) if input.columns is not None else None,
            # Not an object: check_request answers BAD_USER_INPUT naming filter.
            filter=cast(Mapping[str, Any] | None, input.filter),
            analytics=input.analytics.to_record() if input.analytics is not None else None,
        )
        request = dataclasses.replace(request, client_address=info.context.client_address)
        return Job.from_record(await resolvers.export_dataset(info, request, input.idempotency_key))
