"""Batched requests: a JSON array of GraphQL requests in one POST, off unless enabled.

Each request of a batch runs as it would alone (its own limits, policy and rate limits) and
gets its own entry in the answer's array; one request's error does not fail the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dataintel.errors import BadUserInputError, GatewayError, QueryTooComplexError
from dataintel.gateway.request import GraphQLRequest, RequestRejected
from dataintel.settings import HttpSettings


@dataclass(frozen=True, slots=True)
class Batch:
    """The requests of a batch, in order; a malformed one is the error it answers with."""

    requests: tuple[GraphQLRequest | GatewayError, ...]


def read_batch(items: Sequence[Any], http: HttpSettings) -> Batch:
    """The batch in a JSON array; RequestRejected (400) when batches are off or it is too big."""
    if not http.batch_enabled:
        raise RequestRejected([BadUserInputError("Batched requests are not enabled.")])
    if not items:
        raise RequestRejected([BadUserInputError("A batch must hold at least one request.")])
    if len(items) > http.batch_max_size:
        raise RequestRejected(
            [
                QueryTooComplexError(
                    f"A batch may hold at most {http.batch_max_size} requests.",
                    details={
                        "limit": "batch",
                        "measured": len(items),
                        "allowed": http.batch_max_size,
                    },
                )
            ]
        )
    requests: list[GraphQLRequest | GatewayError] = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            requests.append(
                BadUserInputError(f"Request {position} of the batch is not a JSON object.")
            )
            continue
        try:
            requests.append(GraphQLRequest.from_params(item))
        except GatewayError as error:
            requests.append(error)
    return Batch(tuple(requests))
