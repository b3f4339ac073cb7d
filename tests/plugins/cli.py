"""The real ``dataintel`` command as a new user runs it: a fresh directory, a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
"""The directory of the installed ``dataintel`` script (the venv's bin)."""


def clean_environment(**variables: str) -> dict[str, str]:
    """The process environment without any DATAINTEL_* or REDIS_URL, the venv's bin first."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("DATAINTEL_") and name != "REDIS_URL"
    }
    environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
    environment.update(variables)
    return environment


def run_dataintel(
    arguments: list[str],
    directory: Path,
    environment: Mapping[str, str],
    *,
    stdin: str | None = None,
    timeout: float = 180.0,
) -> subprocess.CompletedProcess[str]:
    """Runs ``dataintel ARGUMENTS`` in ``directory`` and returns what it printed."""
    return subprocess.run(
        [str(BIN / "dataintel"), *arguments],
        cwd=directory,
        env=dict(environment),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """The command failed with exactly one line on stderr holding every fragment; returns it."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def fresh_directory(tmp_path: Path) -> Path:
    """An empty working directory, as after a fresh clone (its store is ./var/dataintel.db)."""
    directory = tmp_path / "fresh"
    directory.mkdir()
    return directory
