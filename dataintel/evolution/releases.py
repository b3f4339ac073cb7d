"""The schemas of released versions, kept as schema/releases/<version>.graphql."""

from __future__ import annotations

import re
from pathlib import Path

RELEASES_DIRECTORY = Path("schema") / "releases"
_VERSION = re.compile(r"\d+(?:\.\d+)*")


def latest_release(directory: Path) -> Path | None:
    """The SDL file of the highest released version in the directory, None when there is none."""
    versions = [
        (tuple(int(part) for part in path.stem.split(".")), path)
        for path in directory.glob("*.graphql")
        if _VERSION.fullmatch(path.stem)
    ]
    return max(versions)[1] if versions else None
