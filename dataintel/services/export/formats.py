"""Row writers: CSV (RFC 4180, a header in every part), NDJSON and Parquet (by row groups).

A writer takes batches of rows (tuples in the columns' order) and writes them to a part's
sink as they come: nothing but the current batch is held. gzip wraps CSV and NDJSON; for
Parquet it is the column chunks' codec, so the file stays a Parquet file.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO, Literal, Protocol, cast

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from dataintel.services.artifacts import PartSink
from dataintel.services.export.datasets import ValueKind

ExportFormat = Literal["CSV", "NDJSON", "PARQUET"]
Compression = Literal["NONE", "GZIP"]

EXTENSIONS: dict[ExportFormat, str] = {"CSV": "csv", "NDJSON": "ndjson", "PARQUET": "parquet"}
MEDIA_TYPES: dict[ExportFormat, str] = {
    "CSV": "text/csv; charset=utf-8",
    "NDJSON": "application/x-ndjson",
    "PARQUET": "application/vnd.apache.parquet",
}
DECIMAL_TYPE = pa.decimal128(38, 9)
"""Parquet's type of decimal columns: 38 digits, 9 after the point."""

Row = Sequence[Any]


def iso_utc(moment: datetime) -> str:
    """A moment as UTC ISO 8601 with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(value: object, kind: ValueKind) -> str | int | float | None:
    """The value as CSV/NDJSON carry it: ints as ints, decimals as strings, moments as text."""
    if value is None:
        return None
    if kind == "timestamp":
        return iso_utc(cast(datetime, value))
    if kind == "decimal":
        return str(value)
    if kind in ("int", "cents"):
        return int(cast(int, value))
    if kind == "float":
        return float(cast(float, value))
    return str(value)


class RowWriter(Protocol):
    """Writes batches of rows to one part."""

    def write_rows(self, rows: Sequence[Row]) -> None: ...

    def close(self) -> None:
        """Writes what ends the file (Parquet's footer, gzip's trailer); the sink stays open."""
        ...


class _Output:
    """The part's sink, gzip-wrapped when asked."""

    def __init__(self, sink: PartSink, compression: Compression) -> None:
        self._gzip = (
            gzip.GzipFile(fileobj=cast(BinaryIO, sink), mode="wb", mtime=0)
            if compression == "GZIP"
            else None
        )
        self._sink = sink

    def write(self, data: bytes) -> None:
        if self._gzip is not None:
            self._gzip.write(data)
        else:
            self._sink.write(data)

    def close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()


class CsvWriter:
    """RFC 4180: comma-separated, CRLF line ends, fields quoted when they need it."""

    def __init__(self, output: _Output, names: Sequence[str], kinds: Sequence[ValueKind]) -> None:
        self._output = output
        self._kinds = kinds
        self._write_line([list(names)])

    def _write_line(self, lines: list[list[Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerows(lines)
        self._output.write(buffer.getvalue().encode("utf-8"))

    def write_rows(self, rows: Sequence[Row]) -> None:
        kinds = self._kinds
        lines = []
        for row in rows:
            # csv writes str() of each field: ints exactly, floats round-trip (shortest repr).
            lines.append(
                [
                    "" if value is None else _text(value, kind)
                    for value, kind in zip(row, kinds, strict=True)
                ]
            )
        self._write_line(lines)

    def close(self) -> None:
        self._output.close()


class NdjsonWriter:
    """One JSON object per line, keys in the columns' order."""

    def __init__(self, output: _Output, names: Sequence[str], kinds: Sequence[ValueKind]) -> None:
        self._output = output
        self._names = names
        self._kinds = kinds

    def write_rows(self, rows: Sequence[Row]) -> None:
        names, kinds = self._names, self._kinds
        chunks = [
            orjson.dumps(
                {
                    name: _text(value, kind)
                    for name, value, kind in zip(names, row, kinds, strict=True)
                }
            )
            + b"\n"
            for row in rows
        ]
        self._output.write(b"".join(chunks))

    def close(self) -> None:
        self._output.close()


_ARROW_TYPES: dict[ValueKind, pa.DataType] = {
    "int": pa.int64(),
    "cents": pa.int64(),
    "text": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "float": pa.float64(),
    "decimal": DECIMAL_TYPE,
}


class ParquetWriter:
    """One row group per batch written, typed by the columns' kinds."""

    def __init__(
        self,
        sink: PartSink,
        names: Sequence[str],
        kinds: Sequence[ValueKind],
        compression: Compression,
    ) -> None:
        self._schema = pa.schema(
            [pa.field(name, _ARROW_TYPES[kind]) for name, kind in zip(names, kinds, strict=True)]
        )
        self._kinds = kinds
        self._file = pa.PythonFile(sink, mode="w")
        self._writer = pq.ParquetWriter(
            self._file,
            self._schema,
            compression="gzip" if compression == "GZIP" else "snappy",
        )

    def write_rows(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        columns = []
        for index, kind in enumerate(self._kinds):
            values = [row[index] for row in rows]
            if kind == "decimal":
                values = [None if value is None else Decimal(value) for value in values]
            columns.append(pa.array(values, type=_ARROW_TYPES[kind]))
        self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


def open_writer(
    export_format: ExportFormat,
    compression: Compression,
    sink: PartSink,
    names: Sequence[str],
    kinds: Sequence[ValueKind],
) -> RowWriter:
    """A writer of the format over a part's sink."""
    if export_format == "PARQUET":
        return ParquetWriter(sink, names, kinds, compression)
    output = _Output(sink, compression)
    if export_format == "CSV":
        return CsvWriter(output, names, kinds)
    return NdjsonWriter(output, names, kinds)
