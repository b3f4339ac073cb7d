"""A stored part of a job's output, as the job's result JSON lists it (``result.parts``).

Any job kind that writes files (exports, GDPR access packages) lists them this way, so the
same signed download route serves them all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredPart:
    """One file of a job: its number (1..n), name, media type, size, rows and SHA-256."""

    number: int
    file_name: str
    content_type: str
    bytes: int
    sha256: str
    rows: int | None = None
    content_encoding: str | None = None
    """'gzip' when the file is gzip-compressed data of ``content_type``."""

    def to_json(self) -> dict[str, Any]:
        """The part as it is kept in the job's result."""
        return {
            "number": self.number,
            "fileName": self.file_name,
            "contentType": self.content_type,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "rows": self.rows,
            "contentEncoding": self.content_encoding,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StoredPart:
        """The part from a job's result."""
        return cls(
            number=int(raw["number"]),
            file_name=str(raw["fileName"]),
            content_type=str(raw["contentType"]),
            bytes=int(raw["bytes"]),
            sha256=str(raw["sha256"]),
            rows=None if raw.get("rows") is None else int(raw["rows"]),
            content_encoding=raw.get("contentEncoding"),
        )


def parts_of(result: Mapping[str, Any] | None) -> list[StoredPart]:
    """The parts a job's result lists (none when it lists none)."""
    raw: Sequence[Mapping[str, Any]] = (result or {}).get("parts") or []
    return [StoredPart.from_json(item) for item in raw]
