"""The access package (GDPR Art. 15): one zip of the subject's rows from every mapped dataset.

One JSON file per dataset (its rows, every column, in primary key order) and a manifest
naming each file with its row count and SHA-256, so the package can be checked after
download. Only rows the privacy map links to the subject are read.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa

from dataintel.services.privacy.privacy_map import DatasetPrivacy, PrivacyMap
from dataintel.store.guarded import StoreEngine

MANIFEST = "manifest.json"
PACKAGE_FORMAT = "dataintel-subject-access/1"


@dataclass(frozen=True, slots=True)
class PackagedDataset:
    """One file of the package: the dataset, its rows and the file's SHA-256."""

    dataset: str
    table: str
    file: str
    rows: int
    sha256: str


@dataclass(frozen=True, slots=True)
class AccessPackage:
    """The zip's bytes, its SHA-256 and what it holds."""

    content: bytes
    sha256: str
    datasets: tuple[PackagedDataset, ...]
    manifest: Mapping[str, Any]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


async def subject_rows(
    engine: StoreEngine, privacy_map: PrivacyMap, dataset: DatasetPrivacy, customer_id: int
) -> list[dict[str, Any]]:
    """Every row of the dataset linked to the subject, every column, in primary key order."""
    table = dataset.table
    statement = (
        sa.select(table)
        .where(privacy_map.link(dataset, customer_id))
        .order_by(*table.primary_key.columns)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    # Column names are quoted_name, a str subclass orjson refuses as a key.
    return [
        {str(name): _json_value(value) for name, value in row._asdict().items()} for row in rows
    ]


def build_package(
    request_id: int,
    customer_id: int,
    generated_at: datetime,
    contents: Sequence[tuple[DatasetPrivacy, list[dict[str, Any]]]],
) -> AccessPackage:
    """The zip: one JSON file per dataset and the manifest, written deterministically."""
    buffer = io.BytesIO()
    packaged: list[PackagedDataset] = []
    # A fixed timestamp inside the zip, so the same rows give the same bytes.
    stamp = (generated_at.year, generated_at.month, generated_at.day, 0, 0, 0)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for dataset, rows in contents:
            name = f"{dataset.name}.json"
            data = orjson.dumps(
                {"dataset": dataset.name, "table": dataset.table.name, "rows": rows},
                option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
            )
            archive.writestr(zipfile.ZipInfo(name, stamp), data)
            packaged.append(
                PackagedDataset(
                    dataset.name,
                    dataset.table.name,
                    name,
                    len(rows),
                    hashlib.sha256(data).hexdigest(),
                )
            )
        manifest = {
            "format": PACKAGE_FORMAT,
            "subjectRequestId": request_id,
            "subject": {"customerId": customer_id},
            "generatedAt": generated_at.isoformat(),
            "datasets": [
                {
                    "dataset": item.dataset,
                    "table": item.table,
                    "file": item.file,
                    "rows": item.rows,
                    "sha256": item.sha256,
                }
                for item in packaged
            ],
        }
        archive.writestr(
            zipfile.ZipInfo(MANIFEST, stamp),
            orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        )
    content = buffer.getvalue()
    return AccessPackage(content, hashlib.sha256(content).hexdigest(), tuple(packaged), manifest)
