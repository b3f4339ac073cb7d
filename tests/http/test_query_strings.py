"""GET query strings are read once per distinct query string, and only well-formed ones kept."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from dataintel.gateway.request import RequestRejected
from dataintel.http.query_strings import QueryStringRequests

APQ = quote('{"persistedQuery":{"version":1,"sha256Hash":"' + "a" * 64 + '"}}')


def test_the_same_query_string_is_read_once() -> None:
    requests = QueryStringRequests()
    query_string = f"operationName=Orders&extensions={APQ}&variables=%7B%22n%22%3A2%7D".encode()
    first = requests.read(query_string)
    assert first.operation_name == "Orders"
    assert first.variables == {"n": 2}
    assert first.extensions == {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}
    assert requests.read(query_string) is first
    assert requests.read(b"operationName=Other&" + query_string) is not first


def test_a_malformed_query_string_is_refused_every_time_and_not_kept() -> None:
    requests = QueryStringRequests()
    for _ in range(2):
        with pytest.raises(RequestRejected, match="'variables' parameter is not valid JSON"):
            requests.read(b"query=%7B%20a%20%7D&variables=%7B")
    with pytest.raises(RequestRejected, match="'extensions' parameter must be a JSON object"):
        requests.read(b"query=%7B%20a%20%7D&extensions=%5B%5D")
    assert len(requests) == 0


def test_the_kept_query_strings_are_bounded() -> None:
    requests = QueryStringRequests(size=2, longest=40)
    first = requests.read(b"query=%7B%20a%20%7D")
    requests.read(b"query=%7B%20b%20%7D")
    requests.read(b"query=%7B%20c%20%7D")
    assert len(requests) == 2
    assert requests.read(b"query=%7B%20a%20%7D") is not first
    long = b"query=" + b"%20" * 20 + b"%7B%20a%20%7D"
    assert requests.read(long) is not requests.read(long)
