"""One export in a fresh process, as a worker runs it; prints its rows, time and memory.

``python -m bench.export_worker DATABASE_URL EXPORT_DIR FORMAT``: the peak RSS growth is the
process's peak resident memory (ru_maxrss) minus its resident memory just before the export
(everything imported, engine connected, one warm-up query run).
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import psutil

from dataintel.services.analytics import SqlAnalyticsService, load_catalog
from dataintel.services.artifacts import FilesystemArtifactStorage
from dataintel.services.audit import SqlAuditService
from dataintel.services.export import ExportLimits, ExportRequest, ExportService
from dataintel.services.privacy.privacy_map import load_privacy_map
from dataintel.settings import Settings
from dataintel.store.engine import create_engine


class _Context:
    job_id = "00000000-0000-4000-8000-000000000000"
    requested_by = "bench"
    attempt = 1

    async def report_progress(self, fraction: float) -> None:
        return None

    def cancelled(self) -> bool:
        return False

    def raise_if_cancelled(self) -> None:
        return None


async def _export(url: str, directory: Path, export_format: str) -> Mapping[str, Any]:
    settings = Settings(database_url=url, log_level="warning")
    engine = create_engine(settings.store)
    try:
        service = ExportService(
            engine,
            SqlAnalyticsService(engine, load_catalog(None)),
            FilesystemArtifactStorage(directory),
            SqlAuditService(engine),
            ExportLimits(
                default_part_rows=settings.export.part_rows,
                max_part_rows=settings.export.max_part_rows,
                fetch_rows=settings.export.fetch_rows,
            ),
            load_privacy_map(settings.privacy.map_path).suppressed,
        )
        request = ExportRequest("orders", export_format, "NONE", settings.export.part_rows)  # type: ignore[arg-type]
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT count(*) FROM orders")
        before = psutil.Process().memory_info().rss
        started = time.perf_counter()
        result = await service.run(_Context(), request.to_params())
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {
            "rows": result["rows"],
            "seconds": seconds,
            "bytes": sum(part["bytes"] for part in result["parts"]),
            "rss_growth": max(peak - before, 0),
        }
    finally:
        await engine.dispose()


def main() -> None:
    """Runs the export named on the command line and prints its numbers as JSON."""
    url, directory, export_format = sys.argv[1:4]
    print(orjson.dumps(asyncio.run(_export(url, Path(directory), export_format))).decode())


main()
