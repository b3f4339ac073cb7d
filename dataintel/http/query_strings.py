"""GraphQL requests read from GET query strings, kept per distinct query string.

A persisted query over GET (an APQ hash or a ``documentId``, maybe with variables) is the
same URL request after request: percent-decoding the query string, decoding the JSON of
``extensions`` and ``variables`` and checking the parameters' types gives the same
GraphQLRequest each time. Only that reading is kept; everything that depends on who asks
(authentication, CSRF, rate limits, policy) still runs on every request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.datastructures import QueryParams

from dataintel.errors import BadUserInputError, GatewayError
from dataintel.gateway.request import GraphQLRequest, RequestRejected

KEPT_QUERY_STRINGS = 1024
"""How many distinct query strings are kept, least recently used first out."""
LONGEST_KEPT_QUERY_STRING = 8192
"""Longer query strings (a whole document in ``query``) are read every time, not kept."""


class QueryStringRequests:
    """Reads a GET query string into a GraphQLRequest, once per distinct query string.

    The requests are shared by every request with the same query string: nothing downstream
    changes a GraphQLRequest or its variables (the executor coerces a copy).
    """

    def __init__(
        self, size: int = KEPT_QUERY_STRINGS, longest: int = LONGEST_KEPT_QUERY_STRING
    ) -> None:
        self._size = size
        self._longest = longest
        self._requests: OrderedDict[bytes, GraphQLRequest] = OrderedDict()

    def __len__(self) -> int:
        return len(self._requests)

    def read(self, query_string: bytes) -> GraphQLRequest:
        """The request the query string names; raises RequestRejected when it is malformed."""
        request = self._requests.get(query_string)
        if request is not None:
            self._requests.move_to_end(query_string)
            return request
        # A refused query string raises here and is not kept: it is read again next time.
        request = request_from_query_params(QueryParams(query_string))
        if self._size and len(query_string) <= self._longest:
            self._requests[query_string] = request
            if len(self._requests) > self._size:
                self._requests.popitem(last=False)
        return request


def request_from_query_params(query_params: Mapping[str, str]) -> GraphQLRequest:
    """The GraphQL over HTTP parameters of a GET, ``variables`` and ``extensions`` as JSON."""
    params: dict[str, Any] = {
        "query": query_params.get("query"),
        "operationName": query_params.get("operationName") or None,
        "documentId": query_params.get("documentId") or None,
    }
    for name in ("variables", "extensions"):
        raw = query_params.get(name)
        if raw:
            try:
                params[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise RequestRejected(
                    [BadUserInputError(f"The '{name}' parameter is not valid JSON.")]
                ) from None
    return checked_request(params)


def checked_request(params: Mapping[str, Any]) -> GraphQLRequest:
    """The request of already decoded parameters; a wrong type is a RequestRejected."""
    try:
        return GraphQLRequest.from_params(params)
    except GatewayError as error:
        raise RequestRejected([error]) from None
