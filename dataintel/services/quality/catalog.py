"""Quality checks declared in YAML: a stable id, a dataset, a type and its parameters.

Types (after Great Expectations' core expectations): ``not_null``, ``unique`` (one or several
columns), ``between`` (min/max inclusive unless ``strict``), ``in_set``, ``regex`` (a search
anywhere in the value's text, in the subset PostgreSQL's ``~`` and Python's ``re`` share),
``row_count_between``, ``freshness`` (age of a time column's latest value, warn and fail
thresholds in seconds) and ``referential`` (values found in another table's column).
``where`` filters the dataset's rows (SQL); ``mostly`` (0..1) lets a row check pass when at
least that share of its non-null rows is as expected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dataintel.services.yaml_files import declaration_files, declared_once, parse_yaml
from dataintel.store import tables
from dataintel.store.types import UTCDateTime

CheckType = Literal[
    "not_null",
    "unique",
    "between",
    "in_set",
    "regex",
    "row_count_between",
    "freshness",
    "referential",
]
Severity = Literal["warn", "fail"]
BUILT_IN_CHECKS = "quality_checks.yaml"
ROW_CHECKS: tuple[CheckType, ...] = ("not_null", "between", "in_set", "regex", "referential")
"""Checks that count unexpected rows (``mostly`` applies to them and to ``unique``)."""

_ID = r"^[a-z][a-z0-9_]*$"
# Only the demo business's tables: a check must never reach users, keys or the audit log.
TABLES: Mapping[str, sa.Table] = {table.name: table for table in tables.DEMO_TABLES}


class QualityCatalogError(ValueError):
    """A checks file that cannot be loaded; raised when the app or CLI starts."""


@dataclass(frozen=True, slots=True)
class CheckDefinition:
    """One declared check; the parameters its type does not use are None."""

    id: str
    description: str
    dataset: str
    type: CheckType
    severity: Severity
    tags: tuple[str, ...]
    where: str | None
    columns: tuple[str, ...]
    """The checked column (several for unique; none for row_count_between)."""
    mostly: float
    minimum: float | None
    maximum: float | None
    strict: bool
    values: tuple[str | float, ...]
    warn_after_seconds: float | None
    fail_after_seconds: float | None
    references: str | None
    """table.column for referential."""
    pattern: str | None
    """The regular expression of a regex check."""
    ignore_case: bool = False
    """unique only: values that differ only in letter case are duplicates."""

    @property
    def column(self) -> str:
        """The one checked column of a single-column check."""
        return self.columns[0]


class _CheckSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(pattern=_ID)
    description: str = Field(min_length=1)
    dataset: str
    type: CheckType
    severity: Severity = "fail"
    tags: list[str] = Field(default_factory=list)
    where: str | None = None
    column: str | None = None
    columns: list[str] | None = None
    mostly: float = Field(1.0, ge=0, le=1)
    min: float | None = None
    max: float | None = None
    strict: bool = False
    values: list[str | float] | None = None
    warn_after_seconds: float | None = Field(None, gt=0, alias="warnAfterSeconds")
    fail_after_seconds: float | None = Field(None, gt=0, alias="failAfterSeconds")
    references: str | None = None
    pattern: str | None = None
    ignore_case: bool = Field(False, alias="ignoreCase")

    @model_validator(mode="after")
    def _one_column_field(self) -> _CheckSpec:
        if self.column is not None and self.columns is not None:
            raise ValueError("give column or columns, not both")
        return self


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    checks: list[_CheckSpec] = Field(default_factory=list)


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise QualityCatalogError(f"{where}: {message}")


def _check(spec: _CheckSpec, origin: str) -> CheckDefinition:
    where = f"{origin}: check '{spec.id}'"
    table = TABLES.get(spec.dataset)
    _require(
        table is not None,
        where,
        f"dataset '{spec.dataset}' is not one of {', '.join(sorted(TABLES))}.",
    )
    assert table is not None
    columns = tuple(spec.columns or ([spec.column] if spec.column else []))
    for name in columns:
        _require(
            name in table.c,
            where,
            f"table '{spec.dataset}' has no column '{name}'; columns: {', '.join(table.c.keys())}.",
        )
    if spec.type == "row_count_between":
        _require(not columns, where, "row_count_between takes no column.")
        _require(spec.min is not None or spec.max is not None, where, "give min, max or both.")
    elif spec.type == "unique":
        _require(len(columns) >= 1, where, "unique needs column or columns.")
    else:
        _require(len(columns) == 1, where, f"{spec.type} needs exactly one column.")
    if spec.type == "between":
        _require(spec.min is not None or spec.max is not None, where, "give min, max or both.")
        _require(
            spec.min is None or spec.max is None or spec.min <= spec.max,
            where,
            "min is above max.",
        )
    if spec.type == "in_set":
        _require(bool(spec.values), where, "in_set needs values.")
    if spec.type == "regex":
        _require(bool(spec.pattern), where, "regex needs a pattern.")
        try:
            re.compile(spec.pattern or "")
        except re.error as error:
            raise QualityCatalogError(f"{where}: pattern does not compile: {error}.") from None
    else:
        _require(spec.pattern is None, where, "only regex checks take a pattern.")
    if spec.type == "freshness":
        column_type = table.c[columns[0]].type
        _require(isinstance(column_type, UTCDateTime), where, "freshness needs a time column.")
        _require(
            spec.warn_after_seconds is not None or spec.fail_after_seconds is not None,
            where,
            "give warnAfterSeconds, failAfterSeconds or both.",
        )
    references = spec.references
    if spec.type == "referential":
        target_table, _, target_column = (references or "").partition(".")
        target = TABLES.get(target_table)
        _require(
            target is not None and target_column in target.c,
            where,
            f"references '{references}' is not table.column of a known table.",
        )
    else:
        _require(references is None, where, "only referential checks take references.")
    _require(not spec.ignore_case or spec.type == "unique", where, "only unique takes ignoreCase.")
    _require(
        spec.mostly == 1.0 or spec.type in (*ROW_CHECKS, "unique"),
        where,
        f"mostly applies to row checks, not to {spec.type}.",
    )
    return CheckDefinition(
        id=spec.id,
        description=" ".join(spec.description.split()),
        dataset=spec.dataset,
        type=spec.type,
        severity=spec.severity,
        tags=tuple(spec.tags),
        where=spec.where,
        columns=columns,
        mostly=spec.mostly,
        minimum=spec.min,
        maximum=spec.max,
        strict=spec.strict,
        values=tuple(spec.values or ()),
        warn_after_seconds=spec.warn_after_seconds,
        fail_after_seconds=spec.fail_after_seconds,
        references=references,
        pattern=spec.pattern,
        ignore_case=spec.ignore_case,
    )


def _id_of(spec: _CheckSpec) -> str:
    return spec.id


def _read_file(text: str, origin: str) -> _FileSpec:
    return parse_yaml(text, origin, _FileSpec, QualityCatalogError, "a quality checks file")


def build_checks(files: Sequence[tuple[str, str]]) -> dict[str, CheckDefinition]:
    """Checked definitions from YAML texts (text, origin), later files replacing by id."""
    found: dict[str, CheckDefinition] = {}
    for text, origin in files:
        checks = _read_file(text, origin).checks
        for spec in declared_once(checks, _id_of, QualityCatalogError, f"{origin}: check"):
            found[spec.id] = _check(spec, origin)
    return found


def load_checks(path: Path | None = None) -> dict[str, CheckDefinition]:
    """The built-in checks, with those of ``path`` added or replacing them by id."""
    return build_checks(
        declaration_files(
            "dataintel.services.quality",
            BUILT_IN_CHECKS,
            path,
            QualityCatalogError,
            "the quality checks",
        )
    )
