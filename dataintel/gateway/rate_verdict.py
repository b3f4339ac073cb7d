"""What a rate limiter answers for one hit."""

from __future__ import annotations

from dataclasses import dataclass


# Not frozen: one is made per request, and a frozen dataclass sets each field through
# object.__setattr__. Nothing assigns to one once made.
@dataclass(slots=True)
class Verdict:
    """The outcome of one hit: allowed or not, and what the RateLimit headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Whole seconds until a hit would be allowed again (at least 1 when refused)."""
    unavailable: bool = False
    """Refused because Redis is down and the limiter fails closed."""
