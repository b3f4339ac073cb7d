"""CSRF prevention as Apollo Server does it: a request a browser could send cross-origin
without a preflight must carry a header that only a preflight would have allowed.

A "simple" request (GET, or POST with no Content-Type or one of the three form types) is
sent by a browser from any page without asking the server first; the response is hidden
from that page, but the operation has run with the browser's credentials. Requiring a
non-safelisted header, or a non-simple Content-Type, forces the preflight, which the
gateway's CORS policy then decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dataintel.errors import BadUserInputError
from dataintel.gateway.request import RequestRejected
from dataintel.settings import HttpSettings

SIMPLE_CONTENT_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
SIMPLE_METHODS = frozenset({"GET", "HEAD", "POST"})


def may_be_simple(method: str, content_type: str | None) -> bool:
    """Whether a browser could have sent this request cross-origin without a preflight."""
    if method.upper() not in SIMPLE_METHODS:
        return False
    if content_type is None:
        return True
    essence = content_type.split(";", 1)[0].strip().lower()
    # An empty or unparsable type is not CORS-safelisted, so a browser would preflight it.
    return essence in SIMPLE_CONTENT_TYPES


class CsrfPrevention:
    """Rejects simple requests that carry none of the preflight-forcing headers."""

    def __init__(self, required_headers: Sequence[str], *, enabled: bool = True) -> None:
        self._headers = tuple(name.lower() for name in required_headers)
        self._enabled = enabled and bool(self._headers)

    @classmethod
    def from_settings(cls, http: HttpSettings) -> CsrfPrevention:
        """The rule as csrf_prevention and csrf_required_headers configure it."""
        return cls(http.csrf_required_headers, enabled=http.csrf_prevention)

    def check(self, method: str, headers: Mapping[str, str]) -> None:
        """Raises RequestRejected (400) for a simple request without a required header."""
        if not self._enabled or not may_be_simple(method, headers.get("content-type")):
            return
        # A loop, not any() over a generator: asked on every GET.
        for name in self._headers:
            if headers.get(name, "").strip():
                return
        raise RequestRejected(
            [
                BadUserInputError(
                    "This request has been blocked as a potential cross-site request forgery"
                    " (CSRF). Send a non-empty value in one of these headers: "
                    + ", ".join(self._headers)
                    + "; or POST with Content-Type: application/json.",
                    details={"requiredHeaders": list(self._headers)},
                )
            ]
        )
