"""Accept negotiation and Content-Type checks of GraphQL over HTTP."""

from __future__ import annotations

import pytest

from dataintel.http.media_types import content_type_is_json, negotiate_response_type

GRAPHQL = "application/graphql-response+json"
JSON = "application/json"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (JSON, JSON),
        (GRAPHQL, GRAPHQL),
        (f"{GRAPHQL}, {JSON}", GRAPHQL),
        (f"{JSON}, {GRAPHQL}", GRAPHQL),
        (f"{GRAPHQL};q=0.5, {JSON}", JSON),
        (f"{GRAPHQL}, */*;q=0.1", GRAPHQL),
        (f"{JSON};q=0, */*", GRAPHQL),
        ("text/html", None),
        ("application/xml, text/plain", None),
        (f"{GRAPHQL};q=0", None),
        ("APPLICATION/JSON", JSON),
        (f"{JSON};q=abc", None),
    ],
)
def test_negotiation(accept: str | None, expected: str | None) -> None:
    assert negotiate_response_type(accept) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ('application/json; charset="UTF-8"', True),
        ("application/json;charset=latin-1", None),
        ("text/plain", False),
        ("application/jsonx", False),
        (None, False),
    ],
)
def test_content_type(content_type: str | None, expected: bool | None) -> None:
    assert content_type_is_json(content_type) is expected
