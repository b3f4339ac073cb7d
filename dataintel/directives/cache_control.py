"""@cacheControl: how long a field's value may be cached and for whom (Apollo's semantics).

A field without a hint that returns an object, and every root field, has maxAge 0; a
scalar field inherits its parent's. A type's hint applies to every field returning it,
unless the field has its own. ``inheritMaxAge`` takes the parent field's maxAge, which is
how wrappers (connections, edges, page info) stay neutral. A response may be cached for the
smallest maxAge among its fields, and is PRIVATE (per viewer) when any field is.
"""

from __future__ import annotations

import enum

import strawberry
from strawberry.schema_directive import Location


@strawberry.enum(description="Who may share a cached response.")
class CacheControlScope(enum.Enum):
    PUBLIC = strawberry.enum_value("PUBLIC", description="Anyone with the same roles and scopes.")
    PRIVATE = strawberry.enum_value("PRIVATE", description="Only the same viewer.")


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION, Location.OBJECT, Location.INTERFACE, Location.UNION],
    name="cacheControl",
    description="How long the value may be cached (seconds) and for whom.",
)
class CacheControl:
    max_age: int | None = strawberry.UNSET
    scope: CacheControlScope | None = strawberry.UNSET
    inherit_max_age: bool | None = strawberry.UNSET


def cache_hint(directives: object) -> CacheControl | None:
    """The @cacheControl among a Strawberry definition's directives, if any."""
    if not isinstance(directives, list | tuple):
        return None
    return next((item for item in directives if isinstance(item, CacheControl)), None)
