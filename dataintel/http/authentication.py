"""The request's credential to its viewer: a bearer JWT, an API key, or nothing (anonymous)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NoReturn

from dataintel.context import ANONYMOUS, Viewer
from dataintel.errors import BadUserInputError, GatewayError, UnauthenticatedError
from dataintel.gateway.request import RequestRejected
from dataintel.observability.logging import get_logger
from dataintel.services import Services
from dataintel.services.auth import Identity, is_api_key

API_KEY_HEADER = "x-api-key"
REALM = "dataintel"
_log = get_logger("dataintel.auth")


def challenge(error: str | None = None, description: str | None = None) -> str:
    """A WWW-Authenticate value for the Bearer scheme (RFC 6750, section 3)."""
    parts = [f'realm="{REALM}"']
    if error is not None:
        parts.append(f'error="{error}"')
    if description is not None:
        parts.append('error_description="{}"'.format(description.replace('"', "'")))
    return "Bearer " + ", ".join(parts)


def _rejected(error: GatewayError, status: int, header: str) -> RequestRejected:
    return RequestRejected([error], status=status, headers={"WWW-Authenticate": header})


class Authenticator:
    """Reads the credential of a request; a bad one is a 401, never an anonymous viewer."""

    def __init__(self, services: Callable[[], Services]) -> None:
        self._services = services

    @staticmethod
    def viewer_now(headers: Mapping[str, str]) -> Viewer | None:
        """``viewer``'s answer for a request without a credential (anonymous), without a
        coroutine; None when there is one and ``viewer`` must read it."""
        if "authorization" not in headers and API_KEY_HEADER not in headers:
            return ANONYMOUS
        return None

    async def viewer(self, headers: Mapping[str, str]) -> Viewer:
        """The viewer the request's credential names; raises RequestRejected when it is bad."""
        authorization = headers.get("authorization")
        api_key = headers.get(API_KEY_HEADER)
        if authorization is None and api_key is None:
            return ANONYMOUS
        if authorization is not None and api_key is not None:
            message = "Send one credential: Authorization or X-API-Key, not both."
            ambiguous = BadUserInputError(message, domain="auth")
            raise _rejected(ambiguous, 400, challenge("invalid_request", message))
        if authorization is not None:
            scheme, _, credential = authorization.strip().partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer":
                # RFC 6750: an unsupported scheme gets a challenge without an error code.
                error = UnauthenticatedError(
                    "Only the Bearer scheme is supported: a token or an API key.", domain="auth"
                )
                raise _rejected(error, 401, challenge())
        else:
            assert api_key is not None
            credential = api_key.strip()
            if not is_api_key(credential):
                self._reject(UnauthenticatedError("The API key is not valid.", domain="auth"))
        if not credential:
            self._reject(UnauthenticatedError("The credential is empty.", domain="auth"))
        identity = await self._identity(credential)
        return Viewer(
            identity.user_id,
            identity.roles,
            identity.scopes,
            identity.token_id,
            identity.token_expires_at,
        )

    async def _identity(self, credential: str) -> Identity:
        auth = self._services().auth
        try:
            if is_api_key(credential):
                return await auth.authenticate_api_key(credential)
            return await auth.authenticate_token(credential)
        except UnauthenticatedError as error:
            self._reject(error)
        except GatewayError as error:
            # The provider's keys or the store could not be reached: the credential may be fine.
            retry_after = f"{error.retry_after:g}" if error.retry_after is not None else "5"
            raise RequestRejected(
                [error], status=503, headers={"Retry-After": retry_after}
            ) from None

    def _reject(self, error: UnauthenticatedError) -> NoReturn:
        _log.info("credential rejected", reason=error.message)
        raise _rejected(error, 401, challenge("invalid_token", error.message))
