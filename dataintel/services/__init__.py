"""The services registry: one interface per domain, built once per app."""

from __future__ import annotations

from dataclasses import dataclass

from dataintel.services.analytics import AnalyticsService
from dataintel.services.artifacts import ArtifactStorage, DownloadSigner
from dataintel.services.audit import AuditService
from dataintel.services.auth import AuthService
from dataintel.services.commerce import CommerceService
from dataintel.services.export import ExportService
from dataintel.services.features import FeatureService
from dataintel.services.jobs import JobService
from dataintel.services.privacy import SubjectRequestService
from dataintel.services.quality import QualityService
from dataintel.services.reconciliation import ReconciliationService
from dataintel.services.schema_usage import SchemaUsageService
from dataintel.services.status import StatusService


@dataclass(frozen=True, slots=True)
class Services:
    """Every domain service the resolvers and loaders may call."""

    status: StatusService
    commerce: CommerceService
    features: FeatureService
    analytics: AnalyticsService
    auth: AuthService
    audit: AuditService
    schema_usage: SchemaUsageService
    reconciliation: ReconciliationService
    quality: QualityService
    jobs: JobService
    artifacts: ArtifactStorage
    downloads: DownloadSigner
    privacy: SubjectRequestService
    export: ExportService
