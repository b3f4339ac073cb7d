"""A GraphQL answer's response: what Starlette's Response would have sent."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from dataintel.http.graphql_endpoint import GraphQLAnswer
from dataintel.http.media_types import GRAPHQL_RESPONSE_JSON, JSON


@pytest.mark.parametrize("media_type", [JSON, GRAPHQL_RESPONSE_JSON])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Age": "3", "Cache-Control": "public, max-age=60", "Vary": "Accept, Authorization"},
        {"Cache-Control": "no-store"},
    ],
)
def test_the_same_status_headers_and_body_as_a_starlette_response(
    media_type: str, headers: dict[str, str]
) -> None:
    body = b'{"data":{"status":{"version":"0.1.0"}}}'
    answer = GraphQLAnswer(body, media_type, headers)
    expected = Response(body, media_type=media_type, headers=headers)
    assert (answer.status_code, answer.raw_headers, answer.body, answer.background) == (
        expected.status_code,
        expected.raw_headers,
        expected.body,
        expected.background,
    )
