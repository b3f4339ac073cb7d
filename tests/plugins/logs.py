"""The access log as a test reads it: the JSON lines the gateway wrote, parsed."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from dataintel.observability.logging import access_log


class AccessLines:
    """The access lines written since the fixture started."""

    def __init__(self, file: io.BytesIO) -> None:
        self._file = file

    def read(self) -> list[dict[str, Any]]:
        """Every line so far, each a JSON object."""
        return [orjson.loads(line) for line in self._file.getvalue().splitlines()]


@pytest.fixture
def access_lines() -> Iterator[AccessLines]:
    """Diverts the access log (written outside the standard library's logging, so caplog
    does not see it) into memory for the test."""
    file = io.BytesIO()
    with access_log.diverted(file):
        yield AccessLines(file)
