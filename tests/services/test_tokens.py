"""Bearer tokens: the gateway's own HS256 tokens and an identity provider's, via a JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dataintel.errors import DependencyUnavailableError, UnauthenticatedError
from dataintel.services.tokens import (
    JsonWebKeys,
    SigningSecretMissingError,
    TokenCodec,
    signing_secret,
)
from dataintel.settings import Settings

SECRET = b"s" * 48
ISSUER = "dataintel"
AUDIENCE = "dataintel"
IDP_ISSUER = "https://idp.example.test/"
ALGORITHMS = frozenset({"HS256", "RS256", "ES256"})


def codec(keys: JsonWebKeys | None = None, **overrides: Any) -> TokenCodec:
    options: dict[str, Any] = {
        "secret": SECRET,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "lifetime": timedelta(hours=1),
        "leeway": timedelta(seconds=30),
        "algorithms": ALGORITHMS,
        "keys": keys,
        "external_issuer": IDP_ISSUER,
    }
    options.update(overrides)
    return TokenCodec(**options)


def own_claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "7",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(overrides)
    return claims


async def rejected(token: str, tokens: TokenCodec | None = None) -> str:
    with pytest.raises(UnauthenticatedError) as caught:
        await (tokens or codec()).verify(token)
    return caught.value.message


async def test_issued_token_verifies() -> None:
    tokens = codec()
    issued = tokens.issue("42")
    claims = await tokens.verify(issued.token)
    assert claims.subject == "42"
    assert claims.external is False
    assert issued.expires_at - datetime.now(UTC) > timedelta(minutes=59)


async def test_expired_token_is_rejected_beyond_the_leeway() -> None:
    tokens = codec()
    within = tokens.issue("42", now=datetime.now(UTC) - timedelta(hours=1, seconds=10))
    assert (await tokens.verify(within.token)).subject == "42"
    expired = tokens.issue("42", now=datetime.now(UTC) - timedelta(hours=1, minutes=1))
    assert await rejected(expired.token, tokens) == "The bearer token has expired."


async def test_token_signed_with_another_secret_is_rejected() -> None:
    forged = jwt.encode(own_claims(), b"x" * 48, algorithm="HS256")
    assert await rejected(forged) == "The bearer token is not valid."


@pytest.mark.parametrize(("claim", "value"), [("iss", "someone-else"), ("aud", "another-service")])
async def test_token_for_another_issuer_or_audience_is_rejected(claim: str, value: str) -> None:
    token = jwt.encode(own_claims(**{claim: value}), SECRET, algorithm="HS256")
    assert await rejected(token) == "The bearer token was not issued for this gateway."


async def test_unsigned_token_is_rejected() -> None:
    header = encode_part({"alg": "none", "typ": "JWT"})
    payload = encode_part({"iss": ISSUER, "aud": AUDIENCE, "sub": "1", "exp": 9_999_999_999})
    token = f"{header}.{payload}."
    assert await rejected(token) == "The bearer token's algorithm is not accepted."


async def test_tampered_payload_is_rejected() -> None:
    header, _, signature = codec().issue("7").token.split(".")
    payload = encode_part(own_claims(sub="1", iat=1, exp=9_999_999_999))
    tampered = f"{header}.{payload}.{signature}"
    assert await rejected(tampered) == "The bearer token is not valid."


async def test_garbage_and_missing_claims_are_rejected() -> None:
    assert await rejected("not-a-token") == "The bearer token is not valid."
    without_expiry = own_claims()
    del without_expiry["exp"]
    token = jwt.encode(without_expiry, SECRET, algorithm="HS256")
    assert await rejected(token) == "The bearer token is not valid."


async def test_asymmetric_token_without_a_jwks_is_rejected() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(own_claims(iss=IDP_ISSUER), key, algorithm="ES256")
    assert await rejected(token) == "The bearer token's algorithm is not accepted."


def encode_part(value: dict[str, Any]) -> str:
    """One base64url part of a compact JWS."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def public_jwk(private_key: Any, key_id: str) -> dict[str, Any]:
    """The public half of a key pair as a JWK with a key id."""
    algorithm = jwt.get_algorithm_by_name(
        "ES256" if isinstance(private_key, ec.EllipticCurvePrivateKey) else "RS256"
    )
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(private_key.public_key()))
    jwk["kid"] = key_id
    return jwk


@pytest.fixture
def idp_keys() -> dict[str, Any]:
    """An identity provider's key pairs: one EC (ES256), one RSA (RS256)."""
    return {
        "ec-1": ec.generate_private_key(ec.SECP256R1()),
        "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


@pytest.fixture
def jwks_file(tmp_path: Path, idp_keys: dict[str, Any]) -> Path:
    """The provider's public keys as a JWKS file."""
    path = tmp_path / "jwks.json"
    keys = [public_jwk(key, key_id) for key_id, key in idp_keys.items()]
    path.write_text(json.dumps({"keys": keys}))
    return path


@pytest.fixture
def published(jwks_file: Path) -> bytes:
    """The JWKS file's bytes, as anyone may read them."""
    return jwks_file.read_bytes()


def file_keys(path: Path) -> JsonWebKeys:
    return JsonWebKeys(
        path=path, url=None, algorithms=ALGORITHMS, lifetime_seconds=300, timeout_seconds=1
    )


def idp_token(private_key: Any, key_id: str | None, algorithm: str, **claims: Any) -> str:
    headers = {"kid": key_id} if key_id is not None else {}
    body = own_claims(iss=IDP_ISSUER, sub="auth0|abc", **claims)
    return jwt.encode(body, private_key, algorithm=algorithm, headers=headers)


@pytest.mark.parametrize(("key_id", "algorithm"), [("ec-1", "ES256"), ("rsa-1", "RS256")])
async def test_identity_provider_token_verifies_against_the_jwks_file(
    jwks_file: Path, idp_keys: dict[str, Any], key_id: str, algorithm: str
) -> None:
    tokens = codec(file_keys(jwks_file))
    token = idp_token(
        idp_keys[key_id],
        key_id,
        algorithm,
        roles=["analyst", "no_such_role"],
        scope="read:audit openid",
        email="ada@example.test",
    )
    claims = await tokens.verify(token)
    assert claims.subject == "external:auth0|abc"
    assert claims.external is True
    assert claims.roles == ("analyst", "no_such_role")
    assert claims.scopes == ("read:audit", "openid")
    assert claims.email == "ada@example.test"


async def test_roles_claim_may_be_a_nested_path(jwks_file: Path, idp_keys: dict[str, Any]) -> None:
    tokens = codec(file_keys(jwks_file), roles_claim="realm_access.roles")
    token = idp_token(idp_keys["ec-1"], "ec-1", "ES256", realm_access={"roles": ["admin"]})
    assert (await tokens.verify(token)).roles == ("admin",)


async def test_identity_provider_token_with_wrong_key_or_issuer_is_rejected(
    jwks_file: Path, idp_keys: dict[str, Any]
) -> None:
    tokens = codec(file_keys(jwks_file))
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = idp_token(stranger, "ec-1", "ES256")
    assert await rejected(forged, tokens) == "The bearer token is not valid."
    unknown_key = idp_token(stranger, "ec-9", "ES256")
    message = await rejected(unknown_key, tokens)
    assert message == "The bearer token names a signing key this gateway does not know."
    # The gateway's own issuer is not the provider's: a provider token claiming it fails.
    wrong_issuer = jwt.encode(
        own_claims(iss=ISSUER), idp_keys["ec-1"], algorithm="ES256", headers={"kid": "ec-1"}
    )
    assert await rejected(wrong_issuer, tokens) == (
        "The bearer token was not issued for this gateway."
    )
    # An RSA key used under an EC key id does not verify (the key fixes the algorithm).
    mismatched = idp_token(idp_keys["rsa-1"], "ec-1", "RS256")
    assert await rejected(mismatched, tokens) == "The bearer token is not valid."


async def test_hmac_token_signed_with_the_public_key_is_rejected(
    jwks_file: Path, published: bytes
) -> None:
    # The classic algorithm confusion: HS256 keyed with the provider's public key. PyJWT
    # refuses to sign that way, so the token is put together by hand.
    header = encode_part({"alg": "HS256", "typ": "JWT", "kid": "ec-1"})
    payload = encode_part({**own_claims(iss=IDP_ISSUER, iat=1, exp=9_999_999_999)})
    signing_input = f"{header}.{payload}".encode()
    mac = hmac.new(published, signing_input, hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    assert await rejected(token, codec(file_keys(jwks_file))) == "The bearer token is not valid."


class JwksHandler(BaseHTTPRequestHandler):
    """Serves the JWKS set on the server object and counts the requests."""

    def do_GET(self) -> None:
        server: Any = self.server
        server.requests += 1
        body = json.dumps(server.jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keeps the test output quiet."""


@pytest.fixture
def jwks_server(jwks_file: Path) -> Iterator[Any]:
    """A real HTTP server on loopback serving the JWKS, in a thread."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), JwksHandler)
    server.jwks = json.loads(jwks_file.read_text())
    server.requests = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


async def test_jwks_url_is_fetched_once_and_cached(
    jwks_server: Any, idp_keys: dict[str, Any]
) -> None:
    host, port = jwks_server.server_address
    keys = JsonWebKeys(
        path=None,
        url=f"http://{host}:{port}/.well-known/jwks.json",
        algorithms=ALGORITHMS,
        lifetime_seconds=300,
        timeout_seconds=2,
    )
    tokens = codec(keys)
    for _ in range(3):
        claims = await tokens.verify(idp_token(idp_keys["ec-1"], "ec-1", "ES256"))
        assert claims.subject == "external:auth0|abc"
    assert jwks_server.requests == 1


async def test_unreachable_jwks_is_a_dependency_error(idp_keys: dict[str, Any]) -> None:
    keys = JsonWebKeys(
        path=None,
        url="http://127.0.0.1:9/jwks.json",
        algorithms=ALGORITHMS,
        lifetime_seconds=300,
        timeout_seconds=1,
    )
    with pytest.raises(DependencyUnavailableError):
        await codec(keys).verify(idp_token(idp_keys["ec-1"], "ec-1", "ES256"))


def test_production_requires_a_signing_secret() -> None:
    with pytest.raises(SigningSecretMissingError, match="DATAINTEL_JWT_SECRET is required"):
        signing_secret(Settings().auth, production=True)
    configured = Settings(jwt_secret="k" * 40).auth
    assert signing_secret(configured, production=True) == b"k" * 40
    with pytest.raises(ValueError, match="at least 32 bytes"):
        signing_secret(Settings(jwt_secret="short").auth, production=False)


def test_development_gets_a_random_secret_per_process() -> None:
    first = signing_secret(Settings().auth, production=False)
    second = signing_secret(Settings().auth, production=False)
    assert len(first) == 32
    assert first != second
