"""node(id:) and nodes(ids:): any entity by its global id, through the request's loaders.

Reading an object through ``node`` is allowed exactly when reading it through its own root
field is: the policy of that field (``READ_AS``) is checked against the viewer, with the
same UNAUTHENTICATED or FORBIDDEN answer, and row-level rules (a user sees only itself, its
own API keys) apply as they do there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from dataintel.errors import BadUserInputError, NotFoundError
from dataintel.resolvers import auth as auth_resolvers
from dataintel.resolvers import jobs as job_resolvers
from dataintel.resolvers import quality as quality_resolvers
from dataintel.resolvers import reconciliation as reconciliation_resolvers
from dataintel.resolvers.freshness import load, watched
from dataintel.resolvers.global_ids import GlobalId, decode_global_id
from dataintel.resolvers.info import Info

READ_AS: dict[str, str] = {
    "Customer": "Query.customer",
    "Product": "Query.product",
    "Order": "Query.order",
    "OrderItem": "Query.order",
    "Event": "Query.events",
    "User": "Query.user",
    "ApiKey": "Query.apiKeys",
    "QualityCheck": "Query.qualityCheck",
    "QualityResult": "Query.qualityCheck",
    "Reconciliation": "Query.reconciliation",
    "ReconciliationReport": "Query.reconciliation",
    "Job": "Query.job",
}
"""Each type ``node`` fetches, and the root field whose @auth guards reading it."""
TEXT_KEYED: frozenset[str] = frozenset({"QualityCheck", "Reconciliation", "Job"})
"""Types whose key is text (a declared id, a job's UUID), not an integer."""


@dataclass(frozen=True, slots=True)
class FoundNode:
    """An object ``node`` found: its GraphQL type name and the service's record."""

    type_name: str
    record: object


async def node(info: Info, raw: str) -> FoundNode | None:
    """The object a global id names; None when there is none (or the viewer may not see it).

    A malformed id, or one of a type ``node`` does not fetch, is BAD_USER_INPUT; an object
    the viewer's roles may not read raises the denial of its root field.
    """
    found = decode_global_id(raw)
    coordinate = READ_AS.get(found.type_name)
    if coordinate is None:
        raise BadUserInputError(
            f"'{raw}' names a {found.type_name}, which is not a Node type.",
            details={"type": found.type_name},
        )
    if (found.type_name in TEXT_KEYED) != isinstance(found.key, str):
        raise BadUserInputError(f"'{raw}' is not a global id of this gateway.")
    denial = info.context.read_denial(coordinate)
    if denial is not None:
        raise denial
    record = await _record(info, found)
    return FoundNode(found.type_name, record) if record is not None else None


async def nodes(info: Info, raws: Sequence[str]) -> list[FoundNode | Exception | None]:
    """Each id's object, an error in its place when it cannot be read; loads are batched."""
    maximum = info.context.max_page_size
    if len(raws) > maximum:
        raise BadUserInputError(
            f"nodes takes at most {maximum} ids; it was given {len(raws)}.",
            details={"argument": "ids", "maximum": maximum},
        )
    # Started together, the loads of every id meet in one batch per loader.
    results = await asyncio.gather(*(node(info, raw) for raw in raws), return_exceptions=True)
    answers: list[FoundNode | Exception | None] = []
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result
        answers.append(result)
    return answers


async def _record(info: Info, found: GlobalId) -> object | None:
    if isinstance(found.key, str):
        return await _declared(info, found.type_name, found.key)
    loaders = info.context.loaders.commerce
    services = info.context.services
    key = found.key
    match found.type_name:
        case "Customer":
            return await load(info, loaders.customer, key)
        case "Product":
            return await load(info, loaders.product, key)
        case "Order":
            return await load(info, loaders.order, key)
        case "OrderItem":
            return await load(info, loaders.order_item, key)
        case "Event":
            return await load(info, loaders.event, key)
        case "User":
            return await info.context.services.auth.user(auth_resolvers.actor(info), key)
        case "ApiKey":
            return await info.context.services.auth.api_key(auth_resolvers.actor(info), key)
        case "QualityResult":
            (result,) = await watched(info, services.quality.results([key]))
            return result
        case "ReconciliationReport":
            (run,) = await watched(info, services.reconciliation.runs([key]))
            return run
    return None


async def _declared(info: Info, type_name: str, key: str) -> object | None:
    # A job, or a declared check or comparison with its latest run, as its root field reads it.
    try:
        if type_name == "Job":
            return await job_resolvers.visible_job(info, key)
        if type_name == "QualityCheck":
            return await quality_resolvers.check(info, key)
        if type_name == "Reconciliation":
            return await reconciliation_resolvers.comparison(info, key)
    except NotFoundError:
        return None
    return None
