"""Passwords: argon2id hashing off the event loop, and the length rule."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dataintel.errors import BadUserInputError

MINIMUM_PASSWORD_LENGTH = 12
MAXIMUM_PASSWORD_LENGTH = 1024


class Passwords:
    """argon2id hashing, run in worker threads: one hash takes tens of milliseconds of CPU."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """The argon2id hash of a password."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether the password matches; without a hash, spends the same time and says no."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
            # Answering at once for an unknown email would tell which emails have accounts.
            await self._check(self._dummy_hash, password)
            return False
        return await self._check(password_hash, password)

    async def _check(self, password_hash: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a hash was made with weaker parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)


def checked_password(password: str) -> str:
    """The password, when its length is within the rule; BAD_USER_INPUT otherwise."""
    if not MINIMUM_PASSWORD_LENGTH <= len(password) <= MAXIMUM_PASSWORD_LENGTH:
        raise BadUserInputError(
            f"A password must be {MINIMUM_PASSWORD_LENGTH} to {MAXIMUM_PASSWORD_LENGTH}"
            " characters long.",
            domain="auth",
        )
    return password
