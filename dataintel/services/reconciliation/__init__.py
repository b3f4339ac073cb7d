"""Reconciliation (after datacompy and data-diff): key-based comparison of two datasets.

Re-exports the service and its records; ``catalog`` reads the YAML declarations, ``report``
computes a report in the database, ``service`` stores runs and reads their history.
"""

from dataintel.services.reconciliation.catalog import (
    ColumnComparison,
    ComparisonCatalogError,
    ComparisonDefinition,
    DatasetDefinition,
    KeyDefinition,
    load_comparisons,
)
from dataintel.services.reconciliation.report import (
    ColumnReport,
    ReportCounts,
    Sample,
    SampleValue,
    SideReport,
)
from dataintel.services.reconciliation.service import (
    ReconcileOverrides,
    ReconciliationRun,
    ReconciliationService,
    SqlReconciliationService,
    ToleranceOverride,
)

__all__ = [
    "ColumnComparison",
    "ColumnReport",
    "ComparisonCatalogError",
    "ComparisonDefinition",
    "DatasetDefinition",
    "KeyDefinition",
    "ReconcileOverrides",
    "ReconciliationRun",
    "ReconciliationService",
    "ReportCounts",
    "Sample",
    "SampleValue",
    "SideReport",
    "SqlReconciliationService",
    "ToleranceOverride",
    "load_comparisons",
]
