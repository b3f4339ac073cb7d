"""Data quality (after Great Expectations and Soda): declared checks with a result history.

Re-exports the service and its records; ``catalog`` reads the YAML declarations, ``measure``
measures one check in the database, ``service`` runs checks, stores results and reads them.
"""

from dataintel.services.quality.catalog import (
    CheckDefinition,
    QualityCatalogError,
    load_checks,
)
from dataintel.services.quality.measure import Measurement, UnexpectedValue
from dataintel.services.quality.service import (
    CheckSelection,
    DatasetHealth,
    QualityResult,
    QualityService,
    SqlQualityService,
)

__all__ = [
    "CheckDefinition",
    "CheckSelection",
    "DatasetHealth",
    "Measurement",
    "QualityCatalogError",
    "QualityResult",
    "QualityService",
    "SqlQualityService",
    "UnexpectedValue",
    "load_checks",
]
