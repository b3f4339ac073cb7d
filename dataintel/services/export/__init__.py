"""Export: datasets and analytics results streamed into CSV, NDJSON or Parquet parts."""

from dataintel.services.export.datasets import ANALYTICS, DATASET_NAMES, DATASETS, ExportDataset
from dataintel.services.export.kind import export_kind
from dataintel.services.export.requests import ExportRequest
from dataintel.services.export.service import EXPORT_KIND, ExportLimits, ExportService

__all__ = [
    "ANALYTICS",
    "DATASETS",
    "DATASET_NAMES",
    "EXPORT_KIND",
    "ExportDataset",
    "ExportLimits",
    "ExportRequest",
    "ExportService",
    "export_kind",
]
