"""The hmac erasure strategy: a keyed hash that replaces a value the same way everywhere.

The same value gives the same hash under one key, so joins on a hashed column still work;
without the key the hash cannot be recomputed from a guessed value. A hashed value is
recognised by its shape, so hashing twice leaves it as it is (erasures are idempotent).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from dataintel.observability.logging import get_logger
from dataintel.settings import AuthSettings, PrivacySettings

HMAC_PREFIX = "hmac:"
HMAC_TEXT_LENGTH = len(HMAC_PREFIX) + 43
"""The prefix and 32 bytes in unpadded base64url."""
MINIMUM_KEY_BYTES = 32
DEVELOPMENT_KEY = b"dataintel-development-privacy-key-never-use-in-production"
"""Outside production without a configured key: known to anyone, so it protects nothing."""

_SHAPE = re.compile(r"^hmac:[A-Za-z0-9_-]{43}$")
_log = get_logger("dataintel.privacy")


class PrivacyKeyError(ValueError):
    """The hmac key is missing in production or too short."""


def keyed_hash(key: bytes, value: str) -> str:
    """The value's HMAC-SHA256 under the key, as ``hmac:`` and 43 base64url characters."""
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).digest()
    return HMAC_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_keyed_hash(value: str) -> bool:
    """Whether the value already is what ``keyed_hash`` writes."""
    return _SHAPE.fullmatch(value) is not None


def privacy_key(privacy: PrivacySettings, auth: AuthSettings, *, production: bool) -> bytes:
    """The configured hmac key, else one derived from the JWT secret, else (outside
    production) the development key."""
    if privacy.hmac_key is not None:
        key = privacy.hmac_key.get_secret_value().encode()
        if len(key) < MINIMUM_KEY_BYTES:
            raise PrivacyKeyError(
                f"DATAINTEL_PRIVACY_HMAC_KEY must be at least {MINIMUM_KEY_BYTES} bytes long;"
                " generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return key
    if auth.jwt_secret is not None:
        # A derived key, so that an erased value's hash never doubles as a token signature.
        secret = auth.jwt_secret.get_secret_value().encode()
        return hashlib.sha256(b"dataintel privacy hmac\n" + secret).digest()
    if production:
        raise PrivacyKeyError(
            "DATAINTEL_PRIVACY_HMAC_KEY (or DATAINTEL_JWT_SECRET) is required when"
            " DATAINTEL_ENVIRONMENT=production: erasures write keyed hashes, and the development"
            " key is public. Generate one with:"
            " python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    _log.warning(
        "privacy hmac key not configured",
        detail="erasures hash with the public development key; set DATAINTEL_PRIVACY_HMAC_KEY",
    )
    return DEVELOPMENT_KEY
