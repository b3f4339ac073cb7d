"""Signed, expiring download URLs: HMAC-SHA256 over the job, the part and the expiry.

A URL carries ``expires`` (Unix seconds) and ``signature``; anyone holding it may download
that one part until it expires, so the URL is issued only to who may read the job. Issuing
a new URL does not touch the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

DOWNLOAD_PATH = "/exports/{job_id}/parts/{number}"
"""The REST route every job file is downloaded from (exports and GDPR packages alike)."""


@dataclass(frozen=True, slots=True)
class SignedUrl:
    """A download URL and when it stops working."""

    url: str
    expires_at: datetime


class SignatureProblem(Exception):
    """Why a download URL is refused (its message is the 403 body)."""


class DownloadSigner:
    """Issues and checks download URLs with one HMAC key."""

    def __init__(self, key: bytes | None, lifetime_seconds: int, base_url: str | None) -> None:
        self._key = key or secrets.token_bytes(32)
        self._lifetime = lifetime_seconds
        self._base = (base_url or "").rstrip("/")

    def _signature(self, job_id: str, number: int, expires: int) -> str:
        message = f"{job_id}\n{number}\n{expires}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, job_id: str, number: int, now: datetime | None = None) -> SignedUrl:
        """A URL for one part, valid for the configured lifetime from now."""
        moment = now or datetime.now(UTC)
        expires = int(moment.timestamp()) + self._lifetime
        path = DOWNLOAD_PATH.format(job_id=job_id, number=number)
        signature = self._signature(job_id, number, expires)
        return SignedUrl(
            f"{self._base}{path}?expires={expires}&signature={signature}",
            datetime.fromtimestamp(expires, UTC),
        )

    def check(
        self,
        job_id: str,
        number: int,
        expires: str | None,
        signature: str | None,
        now: datetime | None = None,
    ) -> None:
        """Raises SignatureProblem unless the URL was signed by this key and has not expired."""
        if not expires or not signature:
            raise SignatureProblem("The download URL lacks its expires and signature parameters.")
        if not expires.isdecimal():
            raise SignatureProblem("The download URL's expires parameter is not a time.")
        expected = self._signature(job_id, number, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise SignatureProblem("The download URL's signature is not valid.")
        moment = now or datetime.now(UTC)
        if int(expires) < moment.timestamp():
            raise SignatureProblem(
                "The download URL expired; ask the job again for a fresh downloadUrl."
            )
