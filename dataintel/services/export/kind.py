"""The export job kind: its limits, set from the settings (none of SAQ's defaults)."""

from __future__ import annotations

from dataintel.services.export.service import EXPORT_KIND, ExportService
from dataintel.services.jobs import JobKind
from dataintel.settings import ExportSettings


def export_kind(
    service: ExportService, export: ExportSettings, heartbeat_timeout_seconds: float
) -> JobKind:
    """Exports: long timeout, three attempts with backoff, files kept for the retention."""
    return JobKind(
        name=EXPORT_KIND,
        run=service.run,
        timeout_seconds=export.timeout_seconds,
        max_attempts=3,
        retry_delay_seconds=5.0,
        retry_backoff_max_seconds=300.0,
        result_ttl_seconds=export.retention_seconds,
        heartbeat_timeout_seconds=heartbeat_timeout_seconds,
        cleanup=service.cleanup,
    )
