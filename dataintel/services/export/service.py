"""The export job: streams a dataset from the store into parts of ``partRows`` rows.

Rows come from a server-side cursor (``stream()`` with a bounded ``yield_per``) and are
written as they come, so memory holds one fetched batch, whatever the export's size. Each
part is renamed into place only when complete, with its row count, size and SHA-256; a
failed or cancelled export deletes its parts (the job kind's cleanup).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.errors import GatewayError
from dataintel.services.analytics import AnalyticsService
from dataintel.services.analytics.results import AnalyticsResult
from dataintel.services.artifacts import ArtifactStorage, PartSink, StoredPart
from dataintel.services.audit import AuditEvent, AuditService
from dataintel.services.export.datasets import ANALYTICS, DATASETS, ValueKind
from dataintel.services.export.filters import filter_conditions
from dataintel.services.export.formats import (
    EXTENSIONS,
    MEDIA_TYPES,
    Row,
    RowWriter,
    open_writer,
)
from dataintel.services.export.requests import ExportRequest, check_request
from dataintel.services.jobs import JobContext, JobFailure

EXPORT_KIND = "export"
_PROGRESS_BEFORE_DONE = 0.99


@dataclass(frozen=True, slots=True)
class ExportLimits:
    """How big parts may be and how many rows one fetch brings."""

    default_part_rows: int
    max_part_rows: int
    fetch_rows: int


class _Part:
    """One part being written: its file, its writer and its row count."""

    def __init__(
        self,
        storage: ArtifactStorage,
        job_id: str,
        number: int,
        request: ExportRequest,
        names: Sequence[str],
        kinds: Sequence[ValueKind],
    ) -> None:
        self.number = number
        self.rows = 0
        self._stack = contextlib.ExitStack()
        self._sink: PartSink = self._stack.enter_context(storage.write_part(job_id, number))
        self._writer: RowWriter = open_writer(
            request.format, request.compression, self._sink, names, kinds
        )

    def write(self, rows: Sequence[Row]) -> None:
        self._writer.write_rows(rows)
        self.rows += len(rows)

    def finish(self) -> tuple[int, str]:
        """Ends the file and puts it in place; its size and SHA-256."""
        self._writer.close()
        self._stack.close()
        return self._sink.written, self._sink.hexdigest()

    def discard(self) -> None:
        """Drops the unfinished file."""
        self._stack.__exit__(RuntimeError, RuntimeError("discarded"), None)


class ExportService:
    """Checks export requests and runs them as jobs."""

    def __init__(
        self,
        engine: AsyncEngine,
        analytics: AnalyticsService,
        storage: ArtifactStorage,
        audit: AuditService,
        limits: ExportLimits,
        suppressed: Callable[[str], Any | None],
    ) -> None:
        self._engine = engine
        self._suppressed = suppressed
        """The condition leaving out erased subjects' rows of a table (PrivacyMap.suppressed)."""
        self._analytics = analytics
        self._storage = storage
        self._audit = audit
        self.limits = limits

    def check(self, request: ExportRequest) -> None:
        """BAD_USER_INPUT naming the field for a request the export could not run."""
        check_request(request, self.limits.max_part_rows)

    @staticmethod
    def is_personal(dataset: str) -> bool:
        """Whether the dataset's rows link to persons (needs data_engineer or admin)."""
        found = DATASETS.get(dataset)
        return found is not None and found.personal

    async def cleanup(self, job_id: str) -> None:
        """Deletes every part of the job."""
        await asyncio.to_thread(self._storage.delete, job_id)

    async def run(self, context: JobContext, params: Any) -> dict[str, Any]:
        """The job: writes the parts and answers what they hold."""
        request = ExportRequest.from_params(params)
        try:
            self.check(request)
        except GatewayError as error:
            raise JobFailure(error.code.value, error.message) from None
        # A retry starts over: nothing of an earlier attempt is kept.
        await self.cleanup(context.job_id)
        if request.dataset == ANALYTICS:
            names, kinds, parts, rows = await self._export_analytics(context, request)
        else:
            names, kinds, parts, rows = await self._export_table(context, request)
        result = {
            "dataset": request.dataset,
            "format": request.format,
            "compression": request.compression,
            "columns": [
                {"name": name, "kind": kind} for name, kind in zip(names, kinds, strict=True)
            ],
            "filter": request.filter,
            "rows": rows,
            "parts": [part.to_json() for part in parts],
        }
        await self._audit.append(
            AuditEvent(
                actor=context.requested_by,
                action="export.complete",
                target=f"job:{context.job_id}",
                outcome="success",
                details={
                    "dataset": request.dataset,
                    "filter": request.filter,
                    "columns": list(names),
                    "format": request.format,
                    "compression": request.compression,
                    "rows": rows,
                    "parts": [{"rows": p.rows, "sha256": p.sha256} for p in parts],
                    "ip": request.client_address,
                },
            )
        )
        return result

    def _file_name(self, request: ExportRequest, job_id: str, number: int) -> str:
        extension = EXTENSIONS[request.format]
        if request.compression == "GZIP" and request.format != "PARQUET":
            extension += ".gz"
        return f"{request.dataset}-{job_id[:8]}-part-{number:05d}.{extension}"

    def _stored(self, request: ExportRequest, job_id: str, part: _Part) -> StoredPart:
        size, digest = part.finish()
        gzipped = request.compression == "GZIP" and request.format != "PARQUET"
        return StoredPart(
            number=part.number,
            file_name=self._file_name(request, job_id, part.number),
            content_type="application/gzip" if gzipped else MEDIA_TYPES[request.format],
            bytes=size,
            sha256=digest,
            rows=part.rows,
            content_encoding="gzip" if request.compression == "GZIP" else None,
        )

    async def _write_batches(
        self,
        context: JobContext,
        request: ExportRequest,
        names: Sequence[str],
        kinds: Sequence[ValueKind],
        batches: Any,
        total: int,
    ) -> tuple[list[StoredPart], int]:
        parts: list[StoredPart] = []
        current: _Part | None = None
        written = 0
        job_id = context.job_id
        try:
            async for batch in batches:
                context.raise_if_cancelled()
                offset = 0
                while offset < len(batch):
                    if current is None:
                        current = _Part(
                            self._storage, job_id, len(parts) + 1, request, names, kinds
                        )
                    take = min(request.part_rows - current.rows, len(batch) - offset)
                    await asyncio.to_thread(current.write, batch[offset : offset + take])
                    offset += take
                    if current.rows >= request.part_rows:
                        parts.append(
                            await asyncio.to_thread(self._stored, request, job_id, current)
                        )
                        current = None
                written += len(batch)
                if total:
                    await context.report_progress(min(written / total, 1) * _PROGRESS_BEFORE_DONE)
            if current is None and not parts:
                # An export of no rows is one part holding the header (or schema) only.
                current = _Part(self._storage, job_id, 1, request, names, kinds)
            if current is not None:
                parts.append(await asyncio.to_thread(self._stored, request, job_id, current))
                current = None
        finally:
            if current is not None:
                current.discard()
        return parts, written

    async def _export_table(
        self, context: JobContext, request: ExportRequest
    ) -> tuple[list[str], list[ValueKind], list[StoredPart], int]:
        dataset = DATASETS[request.dataset]
        chosen = (
            [dataset.column(name) for name in request.columns]
            if request.columns is not None
            else list(dataset.columns)
        )
        columns = [column for column in chosen if column is not None]
        conditions = filter_conditions(dataset, request.filter)
        erased = self._suppressed(dataset.subject_table.name)
        if erased is not None:
            conditions.append(erased)
        statement = (
            sa.select(*(column.expression.label(column.name) for column in columns))
            .select_from(dataset.source)
            .where(*conditions)
            .order_by(*dataset.order_by)
        )
        counting = sa.select(sa.func.count()).select_from(dataset.source).where(*conditions)
        async with self._engine.connect() as connection:
            total = int((await connection.execute(counting)).scalar_one())
        fetch = self.limits.fetch_rows

        async def batches() -> Any:
            async with self._engine.connect() as connection:
                result = await connection.stream(statement.execution_options(yield_per=fetch))
                async for partition in result.partitions(fetch):
                    yield [tuple(row) for row in partition]

        parts, rows = await self._write_batches(
            context,
            request,
            [column.name for column in columns],
            [column.kind for column in columns],
            batches(),
            total,
        )
        return [c.name for c in columns], [c.kind for c in columns], parts, rows

    async def _export_analytics(
        self, context: JobContext, request: ExportRequest
    ) -> tuple[list[str], list[ValueKind], list[StoredPart], int]:
        assert request.analytics is not None
        try:
            result = await self._analytics.query(request.analytics)
        except GatewayError as error:
            raise JobFailure(error.code.value, error.message, retryable=error.retryable) from None
        names, kinds, rows = _analytics_rows(result)
        if request.columns is not None:
            unknown = [name for name in request.columns if name not in names]
            if unknown:
                raise JobFailure(
                    "BAD_USER_INPUT",
                    f"columns: the query has no column {', '.join(unknown)}; columns:"
                    f" {', '.join(names)}.",
                )
            picks = [names.index(name) for name in request.columns]
            names = [names[index] for index in picks]
            kinds = [kinds[index] for index in picks]
            rows = [tuple(row[index] for index in picks) for row in rows]

        async def batches() -> Any:
            fetch = self.limits.fetch_rows
            for start in range(0, len(rows), fetch):
                yield rows[start : start + fetch]

        parts, count = await self._write_batches(
            context, request, names, kinds, batches(), len(rows)
        )
        return names, kinds, parts, count


def _analytics_rows(result: AnalyticsResult) -> tuple[list[str], list[ValueKind], list[Row]]:
    names: list[str] = []
    kinds: list[ValueKind] = []
    if result.granularity is not None:
        names.append("time")
        kinds.append("timestamp")
    names.extend(dimension.name for dimension in result.dimensions)
    kinds.extend("text" for _ in result.dimensions)
    names.extend(measure.name for measure in result.measures)
    kinds.extend("float" for _ in result.measures)
    rows: list[Row] = []
    for row in result.rows:
        values: list[Any] = [row.time] if result.granularity is not None else []
        values.extend(dimension.value for dimension in row.dimensions)
        values.extend(measure.value for measure in row.measures)
        rows.append(tuple(values))
    return names, kinds, rows
