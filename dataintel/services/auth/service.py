"""The SQL auth service: its parts (credentials, users, API keys) over one store and audit log."""

from __future__ import annotations

from dataintel.observability.drops import Drops
from dataintel.services.audit import AuditService
from dataintel.services.auth.api_keys import ApiKeyManagement
from dataintel.services.auth.credentials import Credentials
from dataintel.services.auth.identity_cache import IdentityCache
from dataintel.services.auth.passwords import Passwords
from dataintel.services.auth.users import UserDirectory
from dataintel.services.token_revocations import MemoryTokenRevocations, TokenRevocations
from dataintel.services.tokens import TokenCodec
from dataintel.store.guarded import StoreEngine


class SqlAuthService(Credentials, UserDirectory, ApiKeyManagement):
    """AuthService over the store's users, user_roles and api_keys tables."""

    def __init__(
        self,
        engine: StoreEngine,
        audit: AuditService,
        tokens: TokenCodec,
        passwords: Passwords | None = None,
        revocations: TokenRevocations | None = None,
        identities: IdentityCache | None = None,
        drops: Drops | None = None,
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._tokens = tokens
        self._passwords = passwords or Passwords()
        # The app passes the shared list; tools and tests get this process's own.
        self._revocations = revocations or MemoryTokenRevocations()
        # Without one (tools, tests), every bearer request reads its user from the store.
        self._identities = identities
        self._drops = drops or Drops()
