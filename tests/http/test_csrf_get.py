"""``CsrfPrevention.check_get`` decides every GET as ``check("GET", ...)`` does."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial

import pytest

from dataintel.gateway.request import RequestRejected
from dataintel.http.csrf import CsrfPrevention


def _outcome(check: Callable[[], None]) -> str | None:
    try:
        check()
    except RequestRejected as rejected:
        return repr([(e.message, getattr(e, "details", None)) for e in rejected.errors])
    return None


@pytest.mark.parametrize("enabled", [True, False])
def test_check_get_is_check_of_a_get(enabled: bool) -> None:
    csrf = CsrfPrevention(["X-Apollo-Operation-Name", "Apollo-Require-Preflight"], enabled=enabled)
    content_types = [None, "", "text/plain", "application/json", "multipart/form-data; b=1"]
    required = [None, "", " ", "yes"]
    for content_type, first, second in itertools.product(content_types, required, required):
        headers = {
            name: value
            for name, value in (
                ("content-type", content_type),
                ("x-apollo-operation-name", first),
                ("apollo-require-preflight", second),
            )
            if value is not None
        }
        expected = _outcome(partial(csrf.check, "GET", headers))
        assert _outcome(partial(csrf.check_get, headers)) == expected
