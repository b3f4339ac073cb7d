"""Where job files live: an interface, and its filesystem implementation.

Files are addressed by job id and part number. A part is written to a temporary name and
renamed into place only when complete, with its size and SHA-256 computed while written,
so a reader never sees half a part. Several replicas and workers share one directory (a
shared volume) to serve what any of them wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

_JOB_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class PartSink(Protocol):
    """A part being written: bytes in, counted and hashed."""

    def write(self, data: bytes) -> int: ...

    @property
    def written(self) -> int:
        """Bytes written so far."""
        ...

    def hexdigest(self) -> str:
        """SHA-256 (hex) of the bytes written so far; the whole part's after the block."""
        ...


class ArtifactStorage(Protocol):
    """Job files by job id and part number."""

    def write_part(self, job_id: str, number: int) -> contextlib.AbstractContextManager[PartSink]:
        """A sink for one part; committed when the block ends without error, discarded else."""
        ...

    def path(self, job_id: str, number: int) -> Path | None:
        """The committed part's file, None when it does not exist."""
        ...

    def delete(self, job_id: str) -> None:
        """Deletes every file of the job (nothing when there is none)."""
        ...

    def sweep(self, older_than_seconds: float) -> list[str]:
        """Deletes job directories untouched for longer than that; returns their job ids."""
        ...


class _HashingFile:
    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self._written = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self._written += len(data)
        return self._file.write(data)

    @property
    def written(self) -> int:
        return self._written

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class FilesystemArtifactStorage:
    """ArtifactStorage in a directory: ``<root>/<job id>/part-<n>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _directory(self, job_id: str) -> Path:
        if not _JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        return self.root / job_id

    def _file(self, job_id: str, number: int) -> Path:
        if number < 1:
            raise ValueError(f"part numbers start at 1, not {number}")
        return self._directory(job_id) / f"part-{number:05d}"

    @contextlib.contextmanager
    def write_part(self, job_id: str, number: int) -> Iterator[PartSink]:
        """A sink for one part, renamed into place when the block ends without error."""
        target = self._file(job_id, number)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with temporary.open("wb") as file:
                sink = _HashingFile(file)
                yield sink
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)

    def path(self, job_id: str, number: int) -> Path | None:
        """The committed part's file, if it exists."""
        try:
            target = self._file(job_id, number)
        except ValueError:
            return None
        return target if target.is_file() else None

    def delete(self, job_id: str) -> None:
        """Deletes the job's directory."""
        shutil.rmtree(self._directory(job_id), ignore_errors=True)

    def sweep(self, older_than_seconds: float) -> list[str]:
        """Deletes job directories not modified for ``older_than_seconds``."""
        if not self.root.is_dir():
            return []
        limit = time.time() - older_than_seconds
        removed: list[str] = []
        for directory in self.root.iterdir():
            if directory.is_dir() and directory.stat().st_mtime < limit:
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory.name)
        return removed
