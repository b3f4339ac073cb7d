"""Assembles the job kinds every process registers (the app and ``dataintel worker`` alike).

Adding a kind: write its ``JobKind`` beside its service (a function of ``JobResources``),
then register it in ``build_job_kinds``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from dataintel.cache import TwoLevelCache
from dataintel.services.analytics import AnalyticsService
from dataintel.services.artifacts import ArtifactStorage
from dataintel.services.audit import AuditService
from dataintel.services.export import ExportLimits, ExportService, export_kind
from dataintel.services.jobs import JobKinds
from dataintel.services.jobs.probe import probe_kind
from dataintel.services.privacy.kinds import subject_request_kinds
from dataintel.services.privacy.privacy_map import load_privacy_map
from dataintel.settings import ExportSettings, JobsSettings, PrivacySettings
from dataintel.store.guarded import GuardedEngine


@dataclass(frozen=True, slots=True)
class JobResources:
    """What job kinds run over."""

    jobs: JobsSettings
    export: ExportSettings
    privacy: PrivacySettings
    privacy_key: bytes
    """The key of the keyed hash erasures write (services/privacy/keyed_hash.py)."""
    engine: AsyncEngine
    """The store without the breaker's per-call budget: long streamed reads and writes."""
    store: GuardedEngine
    """The store behind its breaker, for short statements."""
    storage: ArtifactStorage
    audit: AuditService
    analytics: AnalyticsService
    cache: TwoLevelCache


def export_service(resources: JobResources) -> ExportService:
    """The export service over the job resources."""
    export = resources.export
    return ExportService(
        resources.engine,
        resources.analytics,
        resources.storage,
        resources.audit,
        ExportLimits(
            default_part_rows=export.part_rows,
            max_part_rows=export.max_part_rows,
            fetch_rows=export.fetch_rows,
        ),
        load_privacy_map(resources.privacy.map_path).suppressed,
    )


def build_job_kinds(resources: JobResources) -> JobKinds:
    """Every job kind, configured from the settings."""
    kinds = JobKinds()
    kinds.register(probe_kind(resources.jobs.heartbeat_timeout_seconds))
    for kind in subject_request_kinds(resources):
        kinds.register(kind)
    kinds.register(
        export_kind(
            export_service(resources), resources.export, resources.jobs.heartbeat_timeout_seconds
        )
    )
    return kinds
