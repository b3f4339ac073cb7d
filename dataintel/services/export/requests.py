"""An export request, checked once when it is made and carried to the job as JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from dataintel.errors import BadUserInputError
from dataintel.services.analytics.planner import AnalyticsFilter, AnalyticsOrder, AnalyticsQuery
from dataintel.services.export.datasets import ANALYTICS, DATASET_NAMES, DATASETS
from dataintel.services.export.filters import filter_conditions
from dataintel.services.export.formats import Compression, ExportFormat

_DOMAIN = "export"
FORMATS: tuple[ExportFormat, ...] = ("CSV", "NDJSON", "PARQUET")
COMPRESSIONS: tuple[Compression, ...] = ("NONE", "GZIP")


def _bad(field_name: str, message: str) -> BadUserInputError:
    return BadUserInputError(message, domain=_DOMAIN, details={"field": field_name})


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What to export, how, in parts of how many rows."""

    dataset: str
    format: ExportFormat
    compression: Compression
    part_rows: int
    columns: tuple[str, ...] | None = None
    """Chosen columns in this order; None: every column."""
    filter: Mapping[str, Any] | None = None
    analytics: AnalyticsQuery | None = None
    client_address: str | None = field(default=None, compare=False)

    def to_params(self) -> dict[str, Any]:
        """The request as the job's JSON parameters."""
        return {
            "dataset": self.dataset,
            "format": self.format,
            "compression": self.compression,
            "partRows": self.part_rows,
            "columns": list(self.columns) if self.columns is not None else None,
            "filter": dict(self.filter) if self.filter is not None else None,
            "analytics": _query_json(self.analytics) if self.analytics is not None else None,
            "clientAddress": self.client_address,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ExportRequest:
        """The request from the job's parameters."""
        analytics = params.get("analytics")
        return cls(
            dataset=str(params["dataset"]),
            format=cast(ExportFormat, params["format"]),
            compression=cast(Compression, params["compression"]),
            part_rows=int(params["partRows"]),
            columns=tuple(params["columns"]) if params.get("columns") is not None else None,
            filter=params.get("filter"),
            analytics=_query_from(analytics) if analytics is not None else None,
            client_address=params.get("clientAddress"),
        )


def check_request(request: ExportRequest, max_part_rows: int) -> None:
    """BAD_USER_INPUT naming the field for anything the export could not do."""
    if request.dataset not in DATASET_NAMES:
        raise _bad(
            "dataset",
            f"dataset: there is no dataset '{request.dataset}'; datasets:"
            f" {', '.join(DATASET_NAMES)}.",
        )
    if request.format not in FORMATS:
        raise _bad("format", f"format: '{request.format}' is not one of {', '.join(FORMATS)}.")
    if request.compression not in COMPRESSIONS:
        raise _bad("compression", f"compression: '{request.compression}' is not NONE or GZIP.")
    if not 1 <= request.part_rows <= max_part_rows:
        raise _bad("partRows", f"partRows must be between 1 and {max_part_rows}.")
    if request.columns is not None:
        if not request.columns:
            raise _bad("columns", "columns: give at least one column, or none for all.")
        duplicated = sorted({name for name in request.columns if request.columns.count(name) > 1})
        if duplicated:
            raise _bad("columns", f"columns: {', '.join(duplicated)} given twice.")
    if request.dataset == ANALYTICS:
        if request.analytics is None:
            raise _bad("analytics", "analytics: the analytics dataset needs the query to run.")
        if request.filter is not None:
            raise _bad("filter", "filter: filter an analytics export in its query's filters.")
        return
    if request.analytics is not None:
        raise _bad("analytics", "analytics: only the analytics dataset takes a query.")
    dataset = DATASETS[request.dataset]
    if request.columns is not None:
        unknown = [name for name in request.columns if dataset.column(name) is None]
        if unknown:
            names = ", ".join(column.name for column in dataset.columns)
            raise _bad(
                "columns",
                f"columns: {dataset.name} has no column {', '.join(unknown)}; columns: {names}.",
            )
    filter_conditions(dataset, request.filter)


def _moment(value: datetime | None) -> dict[str, str] | None:
    return {"t": value.isoformat()} if value is not None else None


def _value_json(value: object) -> object:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _value_from(value: object) -> object:
    if isinstance(value, dict):
        return datetime.fromisoformat(str(value["t"]))
    return value


def _query_json(query: AnalyticsQuery) -> dict[str, Any]:
    return {
        "measures": list(query.measures),
        "dimensions": list(query.dimensions),
        "granularity": query.granularity,
        "timeDimension": query.time_dimension,
        "start": _moment(query.start),
        "end": _moment(query.end),
        "timezone": query.timezone,
        "filters": [
            {
                "member": item.member,
                "operator": item.operator,
                "values": [_value_json(value) for value in item.values],
            }
            for item in query.filters
        ],
        "orderBy": [
            {"member": item.member, "descending": item.descending} for item in query.order_by
        ],
        "limit": query.limit,
    }


def _query_from(raw: Mapping[str, Any]) -> AnalyticsQuery:
    def moment(value: Any) -> datetime | None:
        return datetime.fromisoformat(value["t"]) if value is not None else None

    filters: Sequence[Mapping[str, Any]] = raw["filters"]
    return AnalyticsQuery(
        measures=tuple(raw["measures"]),
        dimensions=tuple(raw["dimensions"]),
        granularity=raw["granularity"],
        time_dimension=raw["timeDimension"],
        start=moment(raw["start"]),
        end=moment(raw["end"]),
        timezone=raw["timezone"],
        filters=tuple(
            AnalyticsFilter(
                item["member"],
                item["operator"],
                tuple(_value_from(value) for value in item["values"]),  # type: ignore[misc]
            )
            for item in filters
        ),
        order_by=tuple(
            AnalyticsOrder(item["member"], descending=item["descending"]) for item in raw["orderBy"]
        ),
        limit=int(raw["limit"]),
    )
