"""Export throughput and memory: orders with items in every format, each in a fresh process.

Memory is the worker process's peak RSS growth during the export; it must stay flat (the
export streams), whatever the row count. Throughput is rows per second, also as a ratio of
CSV's measured in the same run.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from dataintel.settings import Settings
from dataintel.store.engine import create_engine
from dataintel.store.migrate import upgrade
from dataintel.store.seed import seed

FORMATS = ("CSV", "NDJSON", "PARQUET")


@dataclass(frozen=True, slots=True)
class ExportMeasurement:
    """One format's export of orders with items."""

    format: str
    rows: int
    seconds: float
    bytes: int
    rss_growth_bytes: int

    @property
    def rows_per_second(self) -> float:
        """Rows written per second."""
        return self.rows / self.seconds


async def seeded_store(directory: Path, scale: int) -> str:
    """A store seeded at ``scale`` (10,000 orders per scale unit)."""
    url = f"sqlite+aiosqlite:///{directory / f'export-{scale}.db'}"
    engine = create_engine(Settings(database_url=url).store)
    try:
        await upgrade(engine)
        await seed(engine, scale)
    finally:
        await engine.dispose()
    return url


def export_scenarios(url: str, directory: Path) -> list[ExportMeasurement]:
    """Every format's export, each in its own process."""
    measured = []
    for export_format in FORMATS:
        target = directory / f"exports-{export_format.lower()}"
        output = subprocess.run(
            [sys.executable, "-m", "bench.export_worker", url, str(target), export_format],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        found = orjson.loads(output.strip().splitlines()[-1])
        measured.append(
            ExportMeasurement(
                export_format, found["rows"], found["seconds"], found["bytes"], found["rss_growth"]
            )
        )
    return measured


def export_table(measured: list[ExportMeasurement]) -> str:
    """A Markdown table; throughput also as a ratio of CSV's."""
    base = next(m for m in measured if m.format == "CSV").rows_per_second
    lines = [
        "| export (orders with items) | rows | rows/s | vs CSV | MB written | peak RSS growth MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measured:
        lines.append(
            f"| {m.format} | {m.rows:,} | {m.rows_per_second:,.0f} |"
            f" {m.rows_per_second / base:.2f}x | {m.bytes / 1e6:,.1f} |"
            f" {m.rss_growth_bytes / 1e6:,.1f} |"
        )
    return "\n".join(lines)
