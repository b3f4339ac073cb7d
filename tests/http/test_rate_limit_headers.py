"""The per-client limit's headers as a response carries them."""

from __future__ import annotations

from dataintel.gateway.rate_verdict import Verdict
from dataintel.http.rate_limit import (
    RAW_RATE_LIMIT_HEADER_NAMES,
    RawRateLimitHeaders,
    rate_limit_headers,
)


def test_raw_headers_are_the_headers_a_response_would_carry() -> None:
    raw = RawRateLimitHeaders(60)
    for verdict in (
        Verdict(True, 100, 99, 60),
        Verdict(True, 100, 0, 1),
        Verdict(True, 7, 3, 12),
        Verdict(True, 100, 42, 5),
    ):
        # What Starlette's MutableHeaders.update made of the dictionary.
        expected = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in rate_limit_headers(verdict, 60).items()
        ]
        assert raw(verdict) == expected


def test_the_names_the_get_path_replaces_are_those_of_the_raw_headers() -> None:
    # The GET path drops a response's headers of these names before appending the raw ones.
    names = {name for name, _ in RawRateLimitHeaders(60)(Verdict(True, 100, 99, 60))}
    assert names == RAW_RATE_LIMIT_HEADER_NAMES
