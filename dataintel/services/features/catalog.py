"""The feature catalog: views declared in YAML, checked against the sources, looked up by name."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dataintel.errors import BadUserInputError
from dataintel.services.features.formula import Evaluator, compile_formula
from dataintel.services.features.records import (
    AggregateFunction,
    Aggregation,
    FeatureCatalogError,
    FeatureDefinition,
    FeatureView,
    ValueType,
)
from dataintel.services.features.sources import ColumnKind, aggregate_sources, entity_tables
from dataintel.services.yaml_files import declaration_files, parse_yaml

BUILT_IN_VIEWS = "feature_views.yaml"

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NAME = r"^[a-z][a-z0-9_]*$"


def parse_duration(text: str) -> timedelta:
    """A duration written as a whole number and a unit: 90s, 15m, 36h, 30d, 2w."""
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise FeatureCatalogError(f"'{text}' is not a positive duration such as 36h, 30d or 2w.")
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)])


class _FeatureSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    type: ValueType
    description: str = Field(min_length=1)
    aggregate: AggregateFunction | None = None
    source: str | None = None
    column: str | None = None
    window: str | None = None
    where: dict[str, list[str | int]] = Field(default_factory=dict)
    weight: str | None = None
    scale: float | None = None
    formula: str | None = None


class _ViewSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME)
    entity: str
    ttl: str
    description: str = Field(min_length=1)
    features: list[_FeatureSpec] = Field(min_length=1)


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    views: list[_ViewSpec]


_RESULT_KINDS: Mapping[str, ColumnKind | None] = {
    "count": "number",
    "count_distinct": "number",
    "sum": "number",
    "average": "number",
    "days_since_latest": "number",
    "minimum": None,
    "maximum": None,
    "most_frequent": None,
}
_NEEDS_COLUMN = ("count_distinct", "sum", "average", "minimum", "maximum", "most_frequent")
_NEEDS_NUMBER = ("sum", "average")


def _aggregation(view: _ViewSpec, spec: _FeatureSpec, where: str) -> Aggregation:
    if spec.aggregate is None:
        raise FeatureCatalogError(f"{where}: give either 'aggregate' or 'formula'.")
    source = aggregate_sources().get((view.entity, spec.source or ""))
    if source is None:
        names = sorted(name for entity, name in aggregate_sources() if entity == view.entity)
        raise FeatureCatalogError(
            f"{where}: source '{spec.source}' is not one of {', '.join(names)}."
        )
    if spec.aggregate in _NEEDS_COLUMN and spec.column is None:
        raise FeatureCatalogError(f"{where}: aggregate '{spec.aggregate}' needs a 'column'.")
    if spec.weight is not None and spec.aggregate != "most_frequent":
        raise FeatureCatalogError(f"{where}: 'weight' only applies to most_frequent.")
    for column in (spec.column, spec.weight, *spec.where):
        if column is not None and column not in source.columns:
            raise FeatureCatalogError(
                f"{where}: column '{column}' is not in source '{spec.source}';"
                f" columns: {', '.join(sorted(source.columns))}."
            )
    column_kind = source.columns[spec.column][1] if spec.column else "number"
    if spec.aggregate in _NEEDS_NUMBER and column_kind != "number":
        raise FeatureCatalogError(f"{where}: '{spec.aggregate}' needs a numeric column.")
    if spec.weight is not None and source.columns[spec.weight][1] != "number":
        raise FeatureCatalogError(f"{where}: 'weight' needs a numeric column.")
    result_kind = _RESULT_KINDS[spec.aggregate] or column_kind
    if (result_kind == "text") != (spec.type == "string") or spec.type == "bool":
        raise FeatureCatalogError(
            f"{where}: aggregate '{spec.aggregate}' gives a {result_kind}, not a {spec.type}."
        )
    if spec.scale is not None and result_kind != "number":
        raise FeatureCatalogError(f"{where}: 'scale' only applies to numbers.")
    try:
        window = parse_duration(spec.window) if spec.window else None
    except FeatureCatalogError as error:
        raise FeatureCatalogError(f"{where}: window {error}") from None
    return Aggregation(
        function=spec.aggregate,
        source=spec.source or "",
        column=spec.column,
        window=window,
        where=tuple((column, tuple(values)) for column, values in sorted(spec.where.items())),
        weight=spec.weight,
        scale=Decimal(str(spec.scale)) if spec.scale is not None else None,
    )


def _view(spec: _ViewSpec, origin: str) -> tuple[FeatureView, dict[str, Evaluator]]:
    if spec.entity not in entity_tables():
        raise FeatureCatalogError(
            f"{origin}: view '{spec.name}': entity '{spec.entity}' is not one of"
            f" {', '.join(sorted(entity_tables()))}."
        )
    features: list[FeatureDefinition] = []
    formulas: dict[str, Evaluator] = {}
    for feature in spec.features:
        where = f"{origin}: feature '{spec.name}.{feature.name}'"
        if feature.name in {known.name for known in features}:
            raise FeatureCatalogError(f"{where} is declared twice.")
        aggregation = None
        if feature.formula is not None:
            aggregate_keys = ("aggregate", "source", "column", "window", "weight", "scale")
            if any(getattr(feature, key) for key in aggregate_keys) or feature.where:
                raise FeatureCatalogError(f"{where}: a formula takes no aggregate options.")
            if feature.type == "string":
                raise FeatureCatalogError(f"{where}: a formula gives a number or a bool.")
            try:
                formulas[feature.name] = compile_formula(
                    feature.formula, (known.name for known in features)
                )
            except FeatureCatalogError as error:
                raise FeatureCatalogError(f"{where}: {error}") from None
        else:
            aggregation = _aggregation(spec, feature, where)
        features.append(
            FeatureDefinition(
                name=feature.name,
                view=spec.name,
                entity_type=spec.entity,
                value_type=feature.type,
                description=" ".join(feature.description.split()),
                aggregation=aggregation,
                formula=" ".join(feature.formula.split()) if feature.formula else None,
            )
        )
    try:
        ttl = parse_duration(spec.ttl)
    except FeatureCatalogError as error:
        raise FeatureCatalogError(f"{origin}: view '{spec.name}': ttl {error}") from None
    view = FeatureView(
        name=spec.name,
        entity_type=spec.entity,
        ttl=ttl,
        description=" ".join(spec.description.split()),
        features=tuple(features),
    )
    return view, formulas


def _read_views(text: str, origin: str) -> list[_ViewSpec]:
    return parse_yaml(text, origin, _FileSpec, FeatureCatalogError, "a feature view file").views


class FeatureCatalog:
    """The feature views in force, looked up by entity type and feature name."""

    def __init__(self, views: Sequence[FeatureView], formulas: Mapping[str, Evaluator]) -> None:
        self.views = tuple(views)
        self._formulas = dict(formulas)
        self._features: dict[str, dict[str, FeatureDefinition]] = {}
        self._views = {view.name: view for view in views}
        for view in views:
            by_name = self._features.setdefault(view.entity_type, {})
            for feature in view.features:
                if feature.name in by_name:
                    raise FeatureCatalogError(
                        f"feature '{feature.name}' of entity '{view.entity_type}' is in views"
                        f" '{by_name[feature.name].view}' and '{view.name}'; names must be"
                        " unique per entity type."
                    )
                by_name[feature.name] = feature

    @property
    def entity_types(self) -> tuple[str, ...]:
        """Entity types that have at least one feature, sorted."""
        return tuple(sorted(self._features))

    def view(self, name: str) -> FeatureView:
        """The view of this name."""
        return self._views[name]

    def formula(self, view: str, feature: str) -> Evaluator:
        """The compiled formula of a formula feature."""
        return self._formulas[f"{view}.{feature}"]

    def _check_entity_type(self, entity_type: str) -> None:
        if entity_type not in self._features:
            raise BadUserInputError(
                f"Unknown entity type '{entity_type}'; known: {', '.join(self.entity_types)}.",
                domain="features",
                details={"argument": "entityType", "valid": list(self.entity_types)},
            )

    def views_of(self, entity_type: str | None) -> tuple[FeatureView, ...]:
        """The views of one entity type (all when None); BAD_USER_INPUT on an unknown type."""
        if entity_type is None:
            return self.views
        self._check_entity_type(entity_type)
        return tuple(view for view in self.views if view.entity_type == entity_type)

    def select(
        self, entity_type: str, names: Sequence[str] | None
    ) -> tuple[FeatureDefinition, ...]:
        """The named features of an entity type (all when None); BAD_USER_INPUT on unknowns."""
        self._check_entity_type(entity_type)
        known = self._features[entity_type]
        if names is None:
            return tuple(known.values())
        unknown = [name for name in names if name not in known]
        if unknown:
            raise BadUserInputError(
                f"Unknown feature(s) {', '.join(repr(name) for name in unknown)} of entity"
                f" '{entity_type}'; known: {', '.join(known)}.",
                domain="features",
                details={"unknown": unknown, "valid": list(known)},
            )
        return tuple(known[name] for name in dict.fromkeys(names))


def load_catalog(path: Path | None = None) -> FeatureCatalog:
    """The built-in views plus those of ``path``, whose views replace built-ins by name."""
    files = declaration_files(
        "dataintel.services.features",
        BUILT_IN_VIEWS,
        path,
        FeatureCatalogError,
        "feature views from",
    )
    specs = {
        spec.name: (spec, origin) for text, origin in files for spec in _read_views(text, origin)
    }
    views: list[FeatureView] = []
    formulas: dict[str, Evaluator] = {}
    for spec, origin in specs.values():
        view, view_formulas = _view(spec, origin)
        views.append(view)
        formulas.update({f"{view.name}.{name}": formula for name, formula in view_formulas.items()})
    return FeatureCatalog(views, formulas)
