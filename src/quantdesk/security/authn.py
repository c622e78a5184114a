"""Turning a presented credential into a ``Principal``: the one entry point for HTTP and WS.

A credential is either a JWT access token or an API key (``qd_<id>_<secret>``); refresh
tokens are refused here, they are only good at ``/api/v1/auth/refresh``.
"""

from __future__ import annotations

from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import Unauthenticated
from quantdesk.security.api_keys import API_KEY_PREFIX, authenticate_api_key
from quantdesk.security.principal import Principal
from quantdesk.security.tokens import REFRESH_TOKEN_PREFIX, verify_access_token

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


async def authenticate_credential(ctx: AppContext, credential: str) -> Principal:
    """The principal behind an access token or API key, or ``Unauthenticated``."""
    if credential.startswith(REFRESH_TOKEN_PREFIX):
        raise Unauthenticated("a refresh token is not an access credential")
    if credential.startswith(API_KEY_PREFIX):
        return await authenticate_api_key(ctx, credential)
    return await verify_access_token(ctx, credential)
