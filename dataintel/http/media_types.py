"""Content negotiation for GraphQL over HTTP."""

from __future__ import annotations

from functools import lru_cache

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
SUPPORTED_RESPONSE_TYPES = (GRAPHQL_RESPONSE_JSON, JSON)


def _parse_accept(header: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        media_range, *parameters = (piece.strip() for piece in part.split(";"))
        if not media_range:
            continue
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((media_range.lower(), quality))
    return ranges


def _matches(media_range: str, media_type: str) -> bool:
    if media_range in ("*/*", media_type):
        return True
    kind, _, subtype = media_range.partition("/")
    return subtype == "*" and media_type.startswith(kind + "/")


# Clients send a handful of distinct Accept headers, on every request: each is read once.
@lru_cache(maxsize=256)
def negotiate_response_type(accept: str | None) -> str | None:
    """The response media type for this Accept header, or None when nothing fits (406)."""
    if not accept or not accept.strip():
        # The specification: a request without Accept is treated as asking for JSON.
        return JSON
    ranges = _parse_accept(accept)
    best: tuple[float, bool, bool, str] | None = None
    for media_type in SUPPORTED_RESPONSE_TYPES:
        matching = [(r, q) for r, q in ranges if _matches(r, media_type)]
        if not matching:
            continue
        # The most specific matching range decides the quality, as RFC 9110 says.
        media_range, quality = max(matching, key=lambda item: -item[0].count("*"))
        if quality <= 0:
            continue
        named = "*" not in media_range
        # Ties go to a type the client named; a legacy client that only sent wildcards
        # expects application/json, one that names both gets the specification's own type.
        preferred = media_type == (GRAPHQL_RESPONSE_JSON if named else JSON)
        candidate = (quality, named, preferred, media_type)
        if best is None or candidate[:3] > best[:3]:
            best = candidate
    return best[3] if best else None


def accepts_html(accept: str | None) -> bool:
    """Whether a browser asked for a page (Accept names text/html)."""
    return accept is not None and "text/html" in accept.lower()


def content_type_is_json(content_type: str | None) -> bool | None:
    """True for JSON in UTF-8, False for another type, None for JSON in another charset."""
    if not content_type:
        return False
    media_type, *parameters = (piece.strip().lower() for piece in content_type.split(";"))
    if media_type != JSON:
        return False
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return None
    return True
