"""Where Strawberry keeps a schema element's directives: the one adapter that knows it.

Strawberry compiles its types into graphql-core's, and leaves its own definition (with the
directive instances) under ``extensions["strawberry-definition"]``. Everything that reads a
directive from the compiled schema goes through here, so a change in Strawberry touches
one module.
"""

from __future__ import annotations

from typing import TypeVar

from dataintel.directives.auth import Auth
from dataintel.directives.cache_control import CacheControl
from dataintel.directives.cost import Cost
from dataintel.directives.rate_limit import RateLimit

STRAWBERRY_DEFINITION = "strawberry-definition"
D = TypeVar("D")


def directives_on(element: object) -> tuple[object, ...]:
    """The directive instances on a compiled type, field or argument; () when it has none."""
    extensions = getattr(element, "extensions", None) or {}
    directives = getattr(extensions.get(STRAWBERRY_DEFINITION), "directives", None)
    return tuple(directives) if isinstance(directives, list | tuple) else ()


def directive_on(element: object, kind: type[D]) -> D | None:
    """The first directive of this kind on the element, if any."""
    return next((item for item in directives_on(element) if isinstance(item, kind)), None)


def auth_on(element: object) -> Auth | None:
    """The element's @auth."""
    return directive_on(element, Auth)


def rate_limit_on(element: object) -> RateLimit | None:
    """The field's @rateLimit."""
    return directive_on(element, RateLimit)


def cost_on(element: object) -> Cost | None:
    """The field's @cost."""
    return directive_on(element, Cost)


def cache_control_on(element: object) -> CacheControl | None:
    """The element's @cacheControl."""
    return directive_on(element, CacheControl)
