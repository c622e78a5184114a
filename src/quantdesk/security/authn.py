"""Turning a presented credential into a ``Principal``: the one entry point for HTTP and WS.

A credential is either a JWT access token or an API key (``qd_<id>_<secret>``); refresh
tokens are refused here, they are only good at ``/api/v1/auth/refresh``.
"""

from __future__ import annotations

from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import Unauthenticated
from quantdesk.security.api_keys import API_KEY_PREFIX, authenticate_api_key
from quantdesk.security.principal import Principal
from quantdesk.security.services import security_services
from quantdesk.security.sessions import session_is_active
from quantdesk.security.tokens import (
    ACCESS_TOKEN_TYPE,
    REFRESH_TOKEN_PREFIX,
    decode_token,
    invalid_token,
    principal_from_claims,
)

# Cookie names used when the dashboard signs in with cookies (``"cookie": true`` at login).
ACCESS_COOKIE = "qd_access"
REFRESH_COOKIE = "qd_refresh"
CSRF_COOKIE = "qd_csrf"
CSRF_HEADER = "X-CSRF-Token"

__all__ = [
    "ACCESS_COOKIE",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "REFRESH_COOKIE",
    "authenticate_credential",
    "verify_access_token",
]


async def verify_access_token(ctx: AppContext, token: str) -> Principal:
    """The one check of an access token, shared by HTTP and the WebSocket endpoint.

    The signature and claims are checked once per token and process (``tokens``'
    ``VerifiedAccessTokens``, until the token expires); the session is checked every time.
    """
    settings = ctx.settings
    keys = security_services(ctx).keys
    audience, issuer = settings.jwt_audience, settings.token_issuer
    principal = keys.verified_access.get(token, audience=audience, issuer=issuer)
    if principal is None:
        claims = decode_token(
            keys, token, token_type=ACCESS_TOKEN_TYPE, audience=audience, issuer=issuer
        )
        principal = principal_from_claims(claims)
        keys.verified_access.remember(
            token, principal, expires_at=float(claims["exp"]), audience=audience, issuer=issuer
        )
    assert principal.session_id is not None  # noqa: S101 - set by principal_from_claims
    if not await session_is_active(ctx, principal.session_id, principal.user_id):
        raise invalid_token()
    return principal


async def authenticate_credential(ctx: AppContext, credential: str) -> Principal:
    """The principal behind an access token or API key, or ``Unauthenticated``."""
    if credential.startswith(REFRESH_TOKEN_PREFIX):
        raise Unauthenticated("a refresh token is not an access credential")
    if credential.startswith(API_KEY_PREFIX):
        return await authenticate_api_key(ctx, credential)
    return await verify_access_token(ctx, credential)
