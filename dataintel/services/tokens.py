"""Bearer tokens: the gateway's own (HS256) and an identity provider's (against its JWKS)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from dataintel.errors import DependencyUnavailableError, UnauthenticatedError
from dataintel.observability.logging import get_logger
from dataintel.settings import AuthSettings

OWN_ALGORITHM = "HS256"
EXTERNAL_SUBJECT_PREFIX = "external:"
"""Viewers from an identity provider get ids of this form, never a local user's number."""

# An unknown key id may mean the provider rotated its keys; refetching for each such token
# would let anyone make the gateway hammer the provider, so refetches are spaced out.
_UNKNOWN_KEY_REFETCH_SECONDS = 30.0
_MINIMUM_SECRET_BYTES = 32
_log = get_logger("dataintel.auth")


class SigningSecretMissingError(RuntimeError):
    """Production needs a configured signing secret; a random one would die with the process."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token handed to a client and the moment it stops being valid."""

    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says: whose it is, whether an identity provider issued it, grants."""

    subject: str
    external: bool
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    email: str | None = None
    token_id: str | None = None
    """The ``jti`` claim: what a revocation names."""
    expires_at: datetime | None = None
    """The ``exp`` claim: a revocation need not outlive it."""


def _invalid(message: str = "The bearer token is not valid.") -> UnauthenticatedError:
    return UnauthenticatedError(message, domain="auth")


class JsonWebKeys:
    """An identity provider's public keys from a JWKS file and/or URL, cached, fetched off-loop."""

    def __init__(
        self,
        *,
        path: Path | None,
        url: str | None,
        algorithms: frozenset[str],
        lifetime_seconds: float,
        timeout_seconds: float,
    ) -> None:
        if path is None and url is None:
            raise ValueError("a JWKS needs a file path or a URL")
        self._path = path
        self._url = url
        self._algorithms = algorithms
        self._lifetime = lifetime_seconds
        self._timeout = timeout_seconds
        self._keys: tuple[jwt.PyJWK, ...] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, key_id: str | None) -> jwt.PyJWK:
        """The signing key a token names; without a key id, the only key there is."""
        now = time.monotonic()
        if self._keys is None or now - self._fetched_at > self._lifetime:
            await self._refresh(stale_before=now - self._lifetime)
        found = self._find(key_id)
        if found is None and time.monotonic() - self._fetched_at > _UNKNOWN_KEY_REFETCH_SECONDS:
            await self._refresh(stale_before=time.monotonic() - _UNKNOWN_KEY_REFETCH_SECONDS)
            found = self._find(key_id)
        if found is None:
            raise _invalid("The bearer token names a signing key this gateway does not know.")
        return found

    def _find(self, key_id: str | None) -> jwt.PyJWK | None:
        keys = self._keys or ()
        if key_id is None:
            return keys[0] if len(keys) == 1 else None
        return next((key for key in keys if key.key_id == key_id), None)

    async def _refresh(self, stale_before: float) -> None:
        async with self._lock:
            # Another request may have refreshed while this one waited for the lock.
            if self._keys is not None and self._fetched_at > stale_before:
                return
            try:
                documents = await asyncio.to_thread(self._load)
                keys = _signing_keys(documents, self._algorithms)
            except (OSError, ValueError, jwt.PyJWTError) as error:
                _log.warning("jwks unavailable", error=f"{type(error).__name__}: {error}")
                if self._keys is None:
                    raise DependencyUnavailableError(
                        "The identity provider's keys cannot be loaded.",
                        domain="auth",
                        retry_after=5,
                    ) from None
                # Serve with the keys known so far; try again after the next interval.
                self._fetched_at = time.monotonic()
                return
            self._keys = keys
            self._fetched_at = time.monotonic()

    def _load(self) -> list[Mapping[str, Any]]:
        # Blocking file and network reads: this runs in a worker thread.
        documents: list[Mapping[str, Any]] = []
        if self._path is not None:
            documents.append(json.loads(self._path.read_text(encoding="utf-8")))
        if self._url is not None:
            client = jwt.PyJWKClient(
                self._url, cache_keys=False, cache_jwk_set=False, timeout=self._timeout
            )
            documents.append(client.fetch_data())
        return documents


def _signing_keys(
    documents: Sequence[Mapping[str, Any]], algorithms: frozenset[str]
) -> tuple[jwt.PyJWK, ...]:
    keys: list[jwt.PyJWK] = []
    for document in documents:
        entries = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(entries, list):
            raise ValueError("a JWKS is a JSON object with a 'keys' list")
        for entry in entries:
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue
            # A symmetric key in a published set would let anyone who reads it sign tokens.
            if key.public_key_use == "enc" or key.algorithm_name.startswith("HS"):
                continue
            if key.algorithm_name in algorithms:
                keys.append(key)
    if not keys:
        raise ValueError("the JWKS holds no signing key for an allowed algorithm")
    return tuple(keys)


def signing_secret(auth: AuthSettings, *, production: bool) -> bytes:
    """The HS256 key: the configured one, or a random one per process outside production."""
    if auth.jwt_secret is not None:
        secret = auth.jwt_secret.get_secret_value().encode()
        if len(secret) < _MINIMUM_SECRET_BYTES:
            raise ValueError(
                f"DATAINTEL_JWT_SECRET must be at least {_MINIMUM_SECRET_BYTES} bytes long;"
                " generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return secret
    if production:
        raise SigningSecretMissingError(
            "DATAINTEL_JWT_SECRET is required when DATAINTEL_ENVIRONMENT=production: tokens"
            " signed with a per-process random secret stop working on restart and on other"
            " replicas. Generate one with:"
            " python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    _log.warning(
        "jwt secret not configured",
        detail="tokens are signed with a random per-process secret and die with the process;"
        " set DATAINTEL_JWT_SECRET when running several workers or replicas",
    )
    return secrets.token_bytes(_MINIMUM_SECRET_BYTES)


class TokenCodec:
    """Issues the gateway's own tokens and verifies bearer tokens of either kind."""

    def __init__(
        self,
        *,
        secret: bytes,
        issuer: str,
        audience: str,
        lifetime: timedelta,
        leeway: timedelta,
        algorithms: frozenset[str],
        keys: JsonWebKeys | None = None,
        external_issuer: str | None = None,
        roles_claim: str = "roles",
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._lifetime = lifetime
        self._leeway = leeway
        self._algorithms = algorithms
        self._keys = keys
        self._external_issuer = external_issuer or issuer
        self._roles_claim = roles_claim

    @classmethod
    def from_settings(cls, auth: AuthSettings, *, production: bool) -> TokenCodec:
        """A codec configured by the jwt_* and jwks_* settings."""
        algorithms = frozenset(auth.jwt_algorithms)
        keys = None
        if auth.jwks_path is not None or auth.jwks_url is not None:
            keys = JsonWebKeys(
                path=auth.jwks_path,
                url=auth.jwks_url,
                algorithms=algorithms,
                lifetime_seconds=auth.jwks_cache_seconds,
                timeout_seconds=auth.jwks_timeout_seconds,
            )
        return cls(
            secret=signing_secret(auth, production=production),
            issuer=auth.jwt_issuer,
            audience=auth.jwt_audience,
            lifetime=timedelta(seconds=auth.jwt_lifetime_seconds),
            leeway=timedelta(seconds=auth.jwt_leeway_seconds),
            algorithms=algorithms,
            keys=keys,
            external_issuer=auth.jwks_issuer,
            roles_claim=auth.jwt_roles_claim,
        )

    def issue(self, subject: str, *, now: datetime | None = None) -> IssuedToken:
        """A signed token for a local user id, valid for the configured lifetime."""
        if OWN_ALGORITHM not in self._algorithms:
            raise RuntimeError("HS256 is not among DATAINTEL_JWT_ALGORITHMS: login cannot issue")
        issued_at = (now or datetime.now(UTC)).replace(microsecond=0)
        expires_at = issued_at + self._lifetime
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": expires_at,
            "jti": secrets.token_urlsafe(16),
        }
        token = jwt.encode(claims, self._secret, algorithm=OWN_ALGORITHM)
        return IssuedToken(token, expires_at)

    async def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; anything else is UNAUTHENTICATED, with the reason."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid() from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise _invalid("The bearer token's algorithm is not accepted.")
        if algorithm == OWN_ALGORITHM:
            claims = self._decode(token, self._secret, self._issuer)
            return TokenClaims(
                subject=str(claims["sub"]),
                external=False,
                token_id=_token_id(claims),
                expires_at=_expiry(claims),
            )
        if self._keys is None:
            raise _invalid("The bearer token's algorithm is not accepted.")
        key_id = header.get("kid")
        key = await self._keys.key(key_id if isinstance(key_id, str) else None)
        claims = self._decode(token, key, self._external_issuer, algorithm)
        email = claims.get("email")
        return TokenClaims(
            subject=EXTERNAL_SUBJECT_PREFIX + str(claims["sub"]),
            external=True,
            roles=_words(_claim(claims, self._roles_claim)),
            scopes=_words(claims.get("scope")) + _words(claims.get("scp")),
            email=email if isinstance(email, str) else None,
            token_id=_token_id(claims),
            expires_at=_expiry(claims),
        )

    def _decode(
        self, token: str, key: bytes | jwt.PyJWK, issuer: str, algorithm: str = OWN_ALGORITHM
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("The bearer token has expired.") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("The bearer token is not valid yet.") from None
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError):
            raise _invalid("The bearer token was not issued for this gateway.") from None
        except jwt.PyJWTError:
            raise _invalid() from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _invalid()
        return claims


def _token_id(claims: Mapping[str, Any]) -> str | None:
    token_id = claims.get("jti")
    return token_id if isinstance(token_id, str) and token_id else None


def _expiry(claims: Mapping[str, Any]) -> datetime:
    # jwt.decode has checked that exp is present and a number.
    return datetime.fromtimestamp(claims["exp"], UTC)


def _claim(claims: Mapping[str, Any], name: str) -> object:
    # Namespaced claim names are URLs full of dots, so the whole name is tried first; then a
    # dotted path into nested objects (Keycloak's realm_access.roles).
    if name in claims:
        return claims[name]
    value: object = claims
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _words(value: object) -> tuple[str, ...]:
    # Providers send grants as a space-separated string (RFC 9068 'scope') or a list ('scp').
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()
