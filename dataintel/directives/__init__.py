"""Schema directives: @auth, @rateLimit, @cost and @cacheControl; enforced in ``gateway``."""

from dataintel.directives.auth import ANALYSTS, PUBLIC, SIGNED_IN, VIEWERS, Auth
from dataintel.directives.cache_control import CacheControl, CacheControlScope
from dataintel.directives.cost import Cost
from dataintel.directives.rate_limit import RateLimit, RateLimitPer

__all__ = [
    "ANALYSTS",
    "PUBLIC",
    "SIGNED_IN",
    "VIEWERS",
    "Auth",
    "CacheControl",
    "CacheControlScope",
    "Cost",
    "RateLimit",
    "RateLimitPer",
]
