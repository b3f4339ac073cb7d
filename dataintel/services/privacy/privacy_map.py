"""The privacy map, declared in YAML: where personal data lives and what an erasure does to it.

Each dataset names a table, how its rows lead to a data subject (a column holding the
customer id, optionally through another dataset's rows), and its erasure: ``mask`` (per
column ``null``, ``hmac`` or ``redact``), ``delete`` the rows, or ``retain`` them under a
legal basis (GDPR Art. 17(3)). The built-in map covers the demo tables; a file given by
``DATAINTEL_PRIVACY_MAP_PATH`` replaces datasets by name or adds new ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dataintel.services.privacy.keyed_hash import HMAC_TEXT_LENGTH
from dataintel.services.yaml_files import declaration_files, declared_once, parse_yaml
from dataintel.store import tables

Strategy = Literal["null", "hmac", "redact"]
Erasure = Literal["mask", "delete", "retain"]
LegalBasis = Literal[
    "freedom_of_expression",
    "legal_obligation",
    "public_health",
    "archiving_research",
    "legal_claims",
]
"""The grounds of GDPR Art. 17(3) (a) to (e) on which data may be kept despite an erasure."""

BUILT_IN_MAP = "privacy_map.yaml"

Subjects = int | sa.Select[Any]
"""One customer id, or a select of customer ids."""

_NAME = r"^[a-z][a-z0-9_]*$"
# Only the demo business's tables hold data subjects; users and the audit log are the
# platform's own.
TABLES: Mapping[str, sa.Table] = {table.name: table for table in tables.DEMO_TABLES}


class PrivacyMapError(ValueError):
    """A privacy map that cannot be loaded; raised when the app or CLI starts."""


@dataclass(frozen=True, slots=True)
class ColumnErasure:
    """What an erasure writes into one column: null, a keyed hash, or a fixed text."""

    column: str
    strategy: Strategy
    value: str | None = None
    """The text a redact writes."""


@dataclass(frozen=True, slots=True)
class Retention:
    """Why a dataset is kept despite an erasure."""

    basis: LegalBasis
    reason: str


@dataclass(frozen=True, slots=True)
class DatasetPrivacy:
    """One dataset of the map: its table, its link to the subject and its erasure."""

    name: str
    table: sa.Table
    subject_column: str
    """The column holding the subject's key (or, with ``through``, the key of its rows)."""
    through: str | None
    """The dataset whose primary key ``subject_column`` holds, when not the customer id."""
    where: Mapping[str, str]
    """Constant column values a linked row also has (e.g. entity_type: customer)."""
    erasure: Erasure
    columns: tuple[ColumnErasure, ...]
    retention: Retention | None


@dataclass(frozen=True, slots=True)
class PrivacyMap:
    """Every mapped dataset, in the order an erasure processes them (linked-through last)."""

    datasets: tuple[DatasetPrivacy, ...]
    redaction: str

    def dataset(self, name: str) -> DatasetPrivacy | None:
        """The dataset of that name, or None."""
        return next((dataset for dataset in self.datasets if dataset.name == name), None)

    def link(self, dataset: DatasetPrivacy, subjects: Subjects) -> Any:
        """A condition on the dataset's rows: linked to one subject, or to any of a select's."""
        column = dataset.table.c[dataset.subject_column]
        conditions: list[Any] = [
            dataset.table.c[name] == value for name, value in dataset.where.items()
        ]
        if dataset.through is not None:
            parent = self.dataset(dataset.through)
            assert parent is not None, "checked when the map was loaded"
            (key,) = parent.table.primary_key.columns
            conditions.append(column.in_(sa.select(key).where(self.link(parent, subjects))))
        elif isinstance(subjects, int):
            # A text column (feature_values.entity_id) holds the id as text.
            textual = isinstance(column.type, sa.String)
            conditions.append(column == (str(subjects) if textual else subjects))
        else:
            if isinstance(column.type, sa.String):
                ids = subjects.subquery()
                subjects = sa.select(sa.cast(next(iter(ids.c)), column.type))
            conditions.append(column.in_(subjects))
        return sa.and_(*conditions)

    def suppressed(self, table_name: str) -> Any | None:
        """A condition leaving out the rows of suppressed (erased) subjects; None if unmapped.

        For exports: ``select(table).where(privacy_map.suppressed(table.name))``. A table
        several datasets map is filtered by each of them.
        """
        mapped = [dataset for dataset in self.datasets if dataset.table.name == table_name]
        if not mapped:
            return None
        suppressions = sa.select(tables.export_suppressions.c.customer_id)
        return sa.and_(*(sa.not_(self.link(dataset, suppressions)) for dataset in mapped))


class _ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Strategy
    value: str | None = None


class _RetentionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    basis: LegalBasis
    reason: str = Field(min_length=1)


class _SubjectSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str
    through: str | None = None
    where: dict[str, str] = Field(default_factory=dict)


class _DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=_NAME)
    table: str
    subject: _SubjectSpec
    erasure: Erasure
    columns: dict[str, _ColumnSpec] = Field(default_factory=dict)
    legal_basis: _RetentionSpec | None = Field(None, alias="legalBasis")

    @field_validator("columns", mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # `email: hmac` is short for `email: {strategy: hmac}`; YAML reads a bare null as None.
        if not isinstance(value, dict):
            return value
        return {
            name: {"strategy": "null" if spec is None else spec}
            if not isinstance(spec, dict)
            else spec
            for name, spec in value.items()
        }


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    redaction: str | None = Field(None, min_length=1)
    datasets: list[_DatasetSpec] = Field(default_factory=list)


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise PrivacyMapError(f"{where}: {message}")


def _column_length(column: sa.Column[Any]) -> int | None:
    return getattr(column.type, "length", None)


def _dataset(spec: _DatasetSpec, origin: str, redaction: str) -> DatasetPrivacy:
    where = f"{origin}: dataset '{spec.name}'"
    table = TABLES.get(spec.table)
    _require(
        table is not None, where, f"table '{spec.table}' is not one of {', '.join(sorted(TABLES))}."
    )
    assert table is not None
    known = ", ".join(table.c.keys())
    for name in (spec.subject.column, *spec.subject.where, *spec.columns):
        _require(
            name in table.c,
            where,
            f"table '{spec.table}' has no column '{name}'; columns: {known}.",
        )
    columns: list[ColumnErasure] = []
    for name, column_spec in spec.columns.items():
        column = table.c[name]
        length = _column_length(column)
        if column_spec.strategy == "null":
            _require(
                column.nullable is True, where, f"column '{name}' is NOT NULL: it cannot be nulled."
            )
        if column_spec.strategy == "hmac":
            _require(
                isinstance(column.type, sa.String)
                and (length is None or length >= HMAC_TEXT_LENGTH),
                where,
                f"column '{name}' cannot hold an hmac ({HMAC_TEXT_LENGTH} characters of text).",
            )
        value = None
        if column_spec.strategy == "redact":
            value = column_spec.value if column_spec.value is not None else redaction
            _require(
                isinstance(column.type, sa.String),
                where,
                f"column '{name}' is not text: redact it with null.",
            )
            _require(
                length is None or len(value) <= length,
                where,
                f"redaction '{value}' is longer than column '{name}' ({length} characters).",
            )
        else:
            _require(
                column_spec.value is None, where, f"only redact takes a value (column '{name}')."
            )
        columns.append(ColumnErasure(name, column_spec.strategy, value))
    if spec.erasure == "mask":
        _require(bool(columns), where, "mask needs columns and their strategies.")
    else:
        _require(not columns, where, f"{spec.erasure} takes no columns (use mask).")
    if spec.erasure == "retain":
        _require(spec.legal_basis is not None, where, "retain needs a legalBasis.")
    retention = (
        Retention(spec.legal_basis.basis, " ".join(spec.legal_basis.reason.split()))
        if spec.legal_basis is not None
        else None
    )
    _require(
        len(table.primary_key.columns) >= 1, where, f"table '{spec.table}' has no primary key."
    )
    return DatasetPrivacy(
        name=spec.name,
        table=table,
        subject_column=spec.subject.column,
        through=spec.subject.through,
        where=dict(spec.subject.where),
        erasure=spec.erasure,
        columns=tuple(columns),
        retention=retention,
    )


def _read_file(text: str, origin: str) -> _FileSpec:
    return parse_yaml(text, origin, _FileSpec, PrivacyMapError, "a privacy map")


def _name_of(spec: _DatasetSpec) -> str:
    return spec.name


def _depth(name: str, datasets: Mapping[str, DatasetPrivacy], origin: str) -> int:
    seen: list[str] = []
    current: str | None = name
    while current is not None:
        if current in seen:
            raise PrivacyMapError(
                f"{origin}: datasets link through each other: {' -> '.join([*seen, current])}."
            )
        seen.append(current)
        dataset = datasets.get(current)
        if dataset is None:
            raise PrivacyMapError(
                f"{origin}: dataset '{seen[-2]}' links through '{current}', which is not mapped."
            )
        if dataset.through is not None:
            parent = datasets.get(dataset.through)
            if parent is not None and len(parent.table.primary_key.columns) != 1:
                raise PrivacyMapError(
                    f"{origin}: dataset '{current}' links through '{parent.name}', whose table"
                    " has no single-column primary key."
                )
        current = dataset.through
    return len(seen)


def build_privacy_map(files: Sequence[tuple[str, str]]) -> PrivacyMap:
    """The checked map from YAML texts (text, origin), later files replacing datasets by name."""
    found: dict[str, DatasetPrivacy] = {}
    redaction = "[erased]"
    origin = files[-1][1] if files else "privacy map"
    for text, origin in files:
        spec = _read_file(text, origin)
        redaction = spec.redaction or redaction
        described = f"{origin}: dataset"
        for dataset_spec in declared_once(spec.datasets, _name_of, PrivacyMapError, described):
            found[dataset_spec.name] = _dataset(dataset_spec, origin, redaction)
    depths = {name: _depth(name, found, origin) for name in found}
    # Rows linked through a dataset are erased before that dataset's rows, which may stop
    # leading to the subject once erased.
    ordered = sorted(found.values(), key=lambda dataset: -depths[dataset.name])
    return PrivacyMap(tuple(ordered), redaction)


def load_privacy_map(path: Path | None = None) -> PrivacyMap:
    """The built-in map, with the datasets of ``path`` added or replacing them by name."""
    files = declaration_files(
        "dataintel.services.privacy", BUILT_IN_MAP, path, PrivacyMapError, "the privacy map"
    )
    return build_privacy_map(files)
