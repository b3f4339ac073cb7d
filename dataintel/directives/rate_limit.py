"""@rateLimit: how often one viewer or one client address may ask for a sensitive field.

Counted in Redis, so every replica shares the count; see ``gateway/rate_limiting.py``.
"""

from __future__ import annotations

import enum

import strawberry
from strawberry.schema_directive import Location


@strawberry.enum(description="Whose requests a @rateLimit counts together.")
class RateLimitPer(enum.Enum):
    VIEWER = strawberry.enum_value(
        "viewer", description="The signed-in viewer; the client address when anonymous."
    )
    IP = strawberry.enum_value("ip", description="The client address, whoever signs in.")


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="rateLimit",
    description="At most `limit` selections of the field per `window` seconds, per viewer or IP;"
    " beyond, the field is null with RATE_LIMITED and retryAfter.",
)
class RateLimit:
    limit: int
    window: int
    per: RateLimitPer = RateLimitPer.VIEWER


def rate_limit_of(directives: object) -> RateLimit | None:
    """The @rateLimit among a Strawberry definition's directives, if any."""
    if not isinstance(directives, list | tuple):
        return None
    return next((item for item in directives if isinstance(item, RateLimit)), None)
