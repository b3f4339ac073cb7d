"""Identity: users, passwords, API keys, credentials to identities; the RBAC vocabulary.

The package's parts, one idea each: ``records`` (what it hands out), ``protocol`` (the
``AuthService`` interface), ``passwords``, ``users``, ``api_keys``, ``credentials`` (tokens,
keys and logins to identities) and ``service`` (``SqlAuthService``, assembled from them).
The RBAC vocabulary lives in dataintel/rbac.py; its names stay importable from here.
"""

from dataintel.rbac import (
    ADMIN_ROLE,
    ADMIN_USERS_SCOPE,
    ALL_SCOPES,
    ANALYST_SCOPES,
    DATA_ENGINEER_SCOPES,
    OPERATOR,
    OPERATOR_NAME,
    PRIVACY_OFFICER_SCOPES,
    ROLE_SCOPES,
    ROLES,
    VIEWER_SCOPES,
    Actor,
    scopes_for,
)
from dataintel.services.auth.api_keys import (
    API_KEY_PREFIX,
    API_KEY_TOUCH_INTERVAL,
    hash_api_key,
    is_api_key,
)
from dataintel.services.auth.identity_cache import IdentityCache, UserStanding
from dataintel.services.auth.passwords import (
    MAXIMUM_PASSWORD_LENGTH,
    MINIMUM_PASSWORD_LENGTH,
    Passwords,
)
from dataintel.services.auth.protocol import AuthService
from dataintel.services.auth.records import (
    ApiKeyRecord,
    CreatedApiKey,
    Identity,
    LoginResult,
    NewUser,
    UserFilter,
    UserRecord,
    api_key_keyset,
    audit_event,
    user_keyset,
)
from dataintel.services.auth.service import SqlAuthService
from dataintel.services.auth.users import normalize_email

__all__ = [
    "ADMIN_ROLE",
    "ADMIN_USERS_SCOPE",
    "ALL_SCOPES",
    "ANALYST_SCOPES",
    "API_KEY_PREFIX",
    "API_KEY_TOUCH_INTERVAL",
    "DATA_ENGINEER_SCOPES",
    "MAXIMUM_PASSWORD_LENGTH",
    "MINIMUM_PASSWORD_LENGTH",
    "OPERATOR",
    "OPERATOR_NAME",
    "PRIVACY_OFFICER_SCOPES",
    "ROLES",
    "ROLE_SCOPES",
    "VIEWER_SCOPES",
    "Actor",
    "ApiKeyRecord",
    "AuthService",
    "CreatedApiKey",
    "Identity",
    "IdentityCache",
    "LoginResult",
    "NewUser",
    "Passwords",
    "SqlAuthService",
    "UserFilter",
    "UserRecord",
    "UserStanding",
    "api_key_keyset",
    "audit_event",
    "hash_api_key",
    "is_api_key",
    "normalize_email",
    "scopes_for",
    "user_keyset",
]
