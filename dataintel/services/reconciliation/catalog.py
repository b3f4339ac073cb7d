"""Comparisons declared in YAML: two datasets, join keys and compared columns with tolerances.

A dataset is a table of the demo business (optionally filtered by a SQL ``where``) or a SQL
query over the store. A compared column names its column on each side (``column`` when both
sides call it the same); a number or time column may allow a difference of
``absTol + relTol * |reference value|``, the reference being the comparison's ``reference``
side (left unless it says otherwise). Time differences are in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataintel.services.yaml_files import declaration_files, declared_once, parse_yaml
from dataintel.store import tables
from dataintel.store.types import UTCDateTime

ColumnKind = Literal["number", "time", "text"]
Side = Literal["left", "right"]

BUILT_IN_COMPARISONS = "comparisons.yaml"
DEFAULT_SAMPLE_SIZE = 10
MAXIMUM_SAMPLE_SIZE = 100

_ID = r"^[a-z][a-z0-9_]*$"
# Only the demo business's tables: a comparison must never reach users, keys or the audit log.
TABLES: Mapping[str, sa.Table] = {table.name: table for table in tables.DEMO_TABLES}


class ComparisonCatalogError(ValueError):
    """A comparisons file that cannot be loaded; raised when the app or CLI starts."""


@dataclass(frozen=True, slots=True)
class DatasetDefinition:
    """One side's rows: a table (with an optional SQL filter) or a SQL query."""

    table: str | None
    where: str | None
    query: str | None

    @property
    def label(self) -> str:
        """How reports name the dataset."""
        if self.table is not None:
            return self.table if self.where is None else f"{self.table} where {self.where}"
        return f"query: {self.query}"


@dataclass(frozen=True, slots=True)
class KeyDefinition:
    """One join key column, named on each side."""

    left: str
    right: str


@dataclass(frozen=True, slots=True)
class ColumnComparison:
    """A compared column: its name on each side, its kind and its tolerances."""

    name: str
    left: str
    right: str
    kind: ColumnKind
    abs_tolerance: float
    rel_tolerance: float


@dataclass(frozen=True, slots=True)
class ComparisonDefinition:
    """A declared comparison of two datasets by key."""

    id: str
    description: str
    left: DatasetDefinition
    right: DatasetDefinition
    keys: tuple[KeyDefinition, ...]
    columns: tuple[ColumnComparison, ...]
    reference: Side
    sample_size: int


class _DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    table: str | None = None
    where: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _DatasetSpec:
        if (self.table is None) == (self.query is None):
            raise ValueError("give either table (with an optional where) or query")
        if self.query is not None and self.where is not None:
            raise ValueError("where filters a table; put a query's filter in the query")
        return self


class _PairSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    column: str | None = None
    left: str | None = None
    right: str | None = None
    name: str | None = None
    type: ColumnKind | None = None
    abs_tolerance: float = Field(0.0, ge=0, alias="absTol")
    rel_tolerance: float = Field(0.0, ge=0, alias="relTol")

    @model_validator(mode="after")
    def _named(self) -> _PairSpec:
        if self.column is None and (self.left is None or self.right is None):
            raise ValueError("give column (the same on both sides) or left and right")
        if self.column is not None and (self.left is not None or self.right is not None):
            raise ValueError("give column or left and right, not both")
        return self


class _ComparisonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=_ID)
    description: str = Field(min_length=1)
    left: _DatasetSpec
    right: _DatasetSpec
    keys: list[_PairSpec] = Field(min_length=1)
    columns: list[_PairSpec] = Field(default_factory=list)
    reference: Side = "left"
    sample_size: int = Field(DEFAULT_SAMPLE_SIZE, ge=0, le=MAXIMUM_SAMPLE_SIZE, alias="sampleSize")


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comparisons: list[_ComparisonSpec] = Field(default_factory=list)


def _kind_of(column: sa.Column[Any]) -> ColumnKind:
    if isinstance(column.type, UTCDateTime):
        return "time"
    if isinstance(column.type, sa.Integer | sa.Numeric | sa.Float):
        return "number"
    return "text"


def _dataset(spec: _DatasetSpec, where: str) -> DatasetDefinition:
    if spec.table is not None and spec.table not in TABLES:
        raise ComparisonCatalogError(
            f"{where}: table '{spec.table}' is not one of {', '.join(sorted(TABLES))}."
        )
    return DatasetDefinition(spec.table, spec.where, spec.query)


def _column_kind(dataset: DatasetDefinition, name: str, where: str) -> ColumnKind | None:
    """The kind of a table's column (None for a query's); unknown columns are an error."""
    if dataset.table is None:
        return None
    table = TABLES[dataset.table]
    if name not in table.c:
        raise ComparisonCatalogError(
            f"{where}: table '{dataset.table}' has no column '{name}';"
            f" columns: {', '.join(table.c.keys())}."
        )
    return _kind_of(table.c[name])


def _pair(
    spec: _PairSpec, left: DatasetDefinition, right: DatasetDefinition, where: str
) -> ColumnComparison:
    left_name = spec.left or spec.column or ""
    right_name = spec.right or spec.column or ""
    name = spec.name or spec.column or left_name
    where = f"{where} '{name}'"
    kinds = {
        kind
        for kind in (
            _column_kind(left, left_name, where),
            _column_kind(right, right_name, where),
            spec.type,
        )
        if kind is not None
    }
    if not kinds:
        raise ComparisonCatalogError(f"{where}: both sides are queries; say its type.")
    if len(kinds) > 1:
        raise ComparisonCatalogError(
            f"{where}: the sides' columns are of different kinds ({', '.join(sorted(kinds))})."
        )
    kind = kinds.pop()
    if kind == "text" and (spec.abs_tolerance or spec.rel_tolerance):
        raise ComparisonCatalogError(f"{where}: a text column cannot have a tolerance.")
    return ColumnComparison(
        name, left_name, right_name, kind, spec.abs_tolerance, spec.rel_tolerance
    )


def _comparison(spec: _ComparisonSpec, origin: str) -> ComparisonDefinition:
    where = f"{origin}: comparison '{spec.id}'"
    left = _dataset(spec.left, f"{where} left")
    right = _dataset(spec.right, f"{where} right")
    keys = [_pair(key, left, right, f"{where} key") for key in spec.keys]
    columns = [_pair(column, left, right, f"{where} column") for column in spec.columns]
    names = [column.name for column in columns]
    for name in sorted({name for name in names if names.count(name) > 1}):
        raise ComparisonCatalogError(f"{where}: column '{name}' is compared twice.")
    key_columns = {(key.left, key.right) for key in keys}
    for column in columns:
        if (column.left, column.right) in key_columns:
            raise ComparisonCatalogError(f"{where}: column '{column.name}' is a join key.")
    return ComparisonDefinition(
        id=spec.id,
        description=" ".join(spec.description.split()),
        left=left,
        right=right,
        keys=tuple(KeyDefinition(key.left, key.right) for key in keys),
        columns=tuple(columns),
        reference=spec.reference,
        sample_size=spec.sample_size,
    )


def _id_of(spec: _ComparisonSpec) -> str:
    return spec.id


def _read_file(text: str, origin: str) -> _FileSpec:
    return parse_yaml(text, origin, _FileSpec, ComparisonCatalogError, "a comparisons file")


def build_comparisons(files: Sequence[tuple[str, str]]) -> dict[str, ComparisonDefinition]:
    """Checked comparisons from YAML texts (text, origin), later files replacing by id."""
    found: dict[str, ComparisonDefinition] = {}
    for text, origin in files:
        specs = _read_file(text, origin).comparisons
        described = f"{origin}: comparison"
        for spec in declared_once(specs, _id_of, ComparisonCatalogError, described):
            found[spec.id] = _comparison(spec, origin)
    return found


def load_comparisons(path: Path | None = None) -> dict[str, ComparisonDefinition]:
    """The built-in comparisons, with those of ``path`` added or replacing them by id."""
    return build_comparisons(
        declaration_files(
            "dataintel.services.reconciliation",
            BUILT_IN_COMPARISONS,
            path,
            ComparisonCatalogError,
            "the comparisons file",
        )
    )
