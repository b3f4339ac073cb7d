"""Online features (after Feast): declarative feature views, materialization, online reads.

A feature view (YAML: ``feature_views.yaml`` here, plus an operator's file) names an entity
type, a TTL and its features; each feature is an aggregate over a source's rows up to an
as_of, or a formula over earlier features of the view. Materialization computes every view
in one statement per view and upserts the values into the online table; online reads fetch
many entities' features in one statement and say how fresh each value is.

One idea per module: ``records`` (the vocabulary and the records clients get), ``sources``
(the rows aggregates read), ``formula`` (the formula language), ``catalog`` (the YAML,
checked), ``statements`` (a view's SQL), ``values`` (values between the store and Python),
``materialization`` (a view written into the online table) and ``service``.
"""

from dataintel.services.features.catalog import (
    BUILT_IN_VIEWS,
    FeatureCatalog,
    load_catalog,
    parse_duration,
)
from dataintel.services.features.formula import Environment, Evaluator, compile_formula
from dataintel.services.features.materialization import UPSERT_CHUNK
from dataintel.services.features.records import (
    AggregateFunction,
    Aggregation,
    FeatureCatalogError,
    FeatureDefinition,
    FeatureScalar,
    FeatureStatus,
    FeatureValueRecord,
    FeatureView,
    MaterializationSummary,
    ValueType,
)
from dataintel.services.features.service import (
    Clock,
    FeatureService,
    SqlFeatureService,
    system_clock,
)
from dataintel.services.features.sources import ColumnKind
from dataintel.services.features.statements import view_statement
from dataintel.services.features.values import utc

__all__ = [
    "BUILT_IN_VIEWS",
    "UPSERT_CHUNK",
    "AggregateFunction",
    "Aggregation",
    "Clock",
    "ColumnKind",
    "Environment",
    "Evaluator",
    "FeatureCatalog",
    "FeatureCatalogError",
    "FeatureDefinition",
    "FeatureScalar",
    "FeatureService",
    "FeatureStatus",
    "FeatureValueRecord",
    "FeatureView",
    "MaterializationSummary",
    "SqlFeatureService",
    "ValueType",
    "compile_formula",
    "load_catalog",
    "parse_duration",
    "system_clock",
    "utc",
    "view_statement",
]
