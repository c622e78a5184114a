"""Endpoints of identity: ``/api/v1/auth/*``, ``/api/v1/users/me*`` and ``/api/v1/api-keys``."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import Context, DbSession, context_of
from quantdesk.platform.exceptions import NotFound, Unauthenticated
from quantdesk.security import mfa as totp
from quantdesk.security.audit import SecurityEventType
from quantdesk.security.authn import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from quantdesk.security.http import new_csrf_token
from quantdesk.security.policy import CurrentUser, Public, SessionUser
from quantdesk.security.services import security_services
from quantdesk.users import auth, mfa, schemas, service
from quantdesk.users.profile import profile_json
from quantdesk.users.repository import ApiKeyRepository

API = "/api/v1"
REFRESH_COOKIE_PATH = f"{API}/auth"
CSRF_KEY_PURPOSE = "csrf"

auth_router = APIRouter(prefix=f"{API}/auth", tags=["auth"])
me_router = APIRouter(prefix=f"{API}/users/me", tags=["account"])
keys_router = APIRouter(prefix=f"{API}/api-keys", tags=["api keys"])

LoginResponse = schemas.TokenPair | schemas.CookieSession | schemas.MfaChallenge
TokenResponse = schemas.TokenPair | schemas.CookieSession


def _respond_with_tokens(
    ctx: Context, response: Response, tokens: auth.IssuedTokens, *, cookie_mode: bool
) -> TokenResponse:
    if not cookie_mode:
        return schemas.TokenPair(
            access_token=tokens.access_token,
            expires_in=tokens.expires_in,
            refresh_token=tokens.refresh_token,
            refresh_expires_in=tokens.refresh_expires_in,
            session_id=tokens.session_id,
        )
    # Browser sign-in: tokens only in HttpOnly cookies (script cannot read them), the CSRF
    # token readable so the dashboard can echo it in X-CSRF-Token.
    secure = ctx.settings.cookies_secure
    csrf = new_csrf_token(security_services(ctx).derived_key(CSRF_KEY_PURPOSE), tokens.session_id)
    # The access cookie lives as long as the session (the JWT inside still expires in
    # minutes): the refresh call then carries it too, which is how the CSRF check knows
    # which session the request speaks for (security/http.py).
    response.set_cookie(
        ACCESS_COOKIE,
        tokens.access_token,
        max_age=tokens.refresh_expires_in,
        path="/",
        httponly=True,
        secure=secure,
        samesite="strict",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=tokens.refresh_expires_in,
        path=REFRESH_COOKIE_PATH,
        httponly=True,
        secure=secure,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=tokens.refresh_expires_in,
        path="/",
        httponly=False,
        secure=secure,
        samesite="strict",
    )
    return schemas.CookieSession(
        expires_in=tokens.expires_in, csrf_token=csrf, session_id=tokens.session_id
    )


def _clear_cookies(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH)
    response.delete_cookie(CSRF_COOKIE, path="/")


# -- /auth ---------------------------------------------------------------------------------


@auth_router.post(
    "/register",
    dependencies=[Public],
    status_code=status.HTTP_201_CREATED,
    summary="Create an account (role from QUANTDESK_REGISTRATION_ROLE)",
)
async def register(
    body: schemas.RegisterRequest, request: Request, ctx: Context, db: DbSession
) -> schemas.UserOut:
    user = await auth.register(
        ctx, db, ClientInfo.of(request), email=body.email, password=body.password
    )
    return service.user_out(ctx, user)


@auth_router.post(
    "/login",
    dependencies=[Public],
    response_model=LoginResponse,
    summary="Sign in; with MFA on, answers a challenge for /auth/login/mfa",
    responses={
        401: {"description": "Wrong e-mail or password (one answer for both)"},
        429: {"description": "Rate limited or account temporarily locked"},
    },
)
async def login(
    body: schemas.LoginRequest, request: Request, response: Response, ctx: Context
) -> LoginResponse:
    result = await auth.login(
        ctx,
        ClientInfo.of(request),
        email=body.email,
        password=body.password,
        cookie_mode=body.cookie,
    )
    if isinstance(result, auth.MfaRequired):
        return schemas.MfaChallenge(
            challenge_token=result.challenge_token, expires_in=result.expires_in
        )
    return _respond_with_tokens(ctx, response, result, cookie_mode=body.cookie)


@auth_router.post(
    "/login/mfa",
    dependencies=[Public],
    response_model=TokenResponse,
    summary="Second step of sign-in: an authenticator code or a recovery code",
)
async def login_mfa(
    body: schemas.MfaLoginRequest, request: Request, response: Response, ctx: Context
) -> TokenResponse:
    tokens, cookie_mode = await auth.login_mfa(
        ctx, ClientInfo.of(request), challenge_token=body.challenge_token, code=body.code
    )
    return _respond_with_tokens(ctx, response, tokens, cookie_mode=cookie_mode)


@auth_router.post(
    "/refresh",
    dependencies=[Public],
    response_model=TokenResponse,
    summary="Rotate a refresh token (body, or the qd_refresh cookie) for new tokens",
)
async def refresh(
    request: Request,
    response: Response,
    ctx: Context,
    body: Annotated[schemas.RefreshRequest | None, Body()] = None,
) -> TokenResponse:
    presented = body.refresh_token if body is not None else None
    cookie_mode = presented is None
    if presented is None:
        presented = request.cookies.get(REFRESH_COOKIE)
    if not presented:
        raise Unauthenticated("a refresh token is required")
    tokens = await auth.refresh(ctx, ClientInfo.of(request), refresh_token=presented)
    return _respond_with_tokens(ctx, response, tokens, cookie_mode=cookie_mode)


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
async def logout(principal: SessionUser, request: Request, ctx: Context, db: DbSession) -> Response:
    assert principal.session_id is not None  # noqa: S101 - SessionUser guarantees it
    await auth.revoke_session(
        ctx,
        db,
        ClientInfo.of(request),
        user_id=principal.user_id,
        session_id=principal.session_id,
        event=SecurityEventType.LOGOUT,
    )
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_cookies(response)
    return response


@auth_router.post(
    "/logout-all", status_code=status.HTTP_204_NO_CONTENT, summary="End every session"
)
async def logout_all(
    principal: SessionUser, request: Request, ctx: Context, db: DbSession
) -> Response:
    await auth.revoke_all_sessions(
        ctx,
        db,
        ClientInfo.of(request),
        user_id=principal.user_id,
        reason=SecurityEventType.LOGOUT_ALL,
    )
    # "Everywhere" includes programs: an API key is a way in like a session (docs/security.md).
    await service.revoke_all_api_keys(ctx, db, principal.user_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_cookies(response)
    return response


# -- /users/me -----------------------------------------------------------------------------


@me_router.get("", summary="The signed-in user", response_model=schemas.UserOut)
async def me(principal: CurrentUser, request: Request) -> Response:
    # The context from the request rather than the ``Context`` dependency: one node fewer
    # for FastAPI to resolve on the most frequent authenticated read (docs/benchmarks.md).
    body = await profile_json(context_of(request), principal.user_id)
    return Response(body, media_type="application/json")


@me_router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase the account's personal data (password, and a code when MFA is on)",
)
async def erase_me(
    body: schemas.ReauthRequest,
    principal: SessionUser,
    request: Request,
    ctx: Context,
    db: DbSession,
) -> Response:
    await service.erase_account(ctx, db, ClientInfo.of(request), principal, body)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _clear_cookies(response)
    return response


@me_router.get("/export", summary="All personal data held about the signed-in user")
async def export_me(
    principal: SessionUser, ctx: Context, db: DbSession
) -> schemas.PersonalDataExport:
    return await service.export_personal_data(ctx, db, principal)


@me_router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change the password (ends every other session)",
)
async def change_password(
    body: schemas.PasswordChange,
    principal: SessionUser,
    request: Request,
    ctx: Context,
    db: DbSession,
) -> None:
    await service.change_password(ctx, db, ClientInfo.of(request), principal, body)


@me_router.get("/sessions", summary="Live sessions of the signed-in user")
async def list_sessions(principal: SessionUser, db: DbSession) -> list[schemas.SessionOut]:
    return await service.list_sessions(db, principal)


@me_router.delete(
    "/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="End one session"
)
async def revoke_session(
    session_id: uuid.UUID, principal: SessionUser, request: Request, ctx: Context, db: DbSession
) -> None:
    found = await auth.revoke_session(
        ctx,
        db,
        ClientInfo.of(request),
        user_id=principal.user_id,
        session_id=session_id,
        event=SecurityEventType.SESSION_REVOKED,
    )
    if not found:
        raise NotFound("no such session")


@me_router.post("/mfa/totp", summary="Start TOTP enrolment: secret, otpauth URI and QR code")
async def enrol_totp(principal: SessionUser, ctx: Context, db: DbSession) -> schemas.TotpEnrolment:
    secret, uri = await mfa.enrol(ctx, db, principal)
    # Drawing the QR codes takes longer than the write: end the unit of work first, so the
    # write lock (one writer at a time on SQLite) is not held while they are drawn.
    await db.commit()
    return schemas.TotpEnrolment(
        secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri), qr_png=totp.qr_png_data_uri(uri)
    )


@me_router.post(
    "/mfa/totp/confirm", summary="Turn MFA on with a first code; returns recovery codes"
)
async def confirm_totp(
    body: schemas.CodeRequest,
    principal: SessionUser,
    request: Request,
    ctx: Context,
    db: DbSession,
) -> schemas.RecoveryCodes:
    codes = await mfa.confirm(ctx, db, ClientInfo.of(request), principal, body.code)
    return schemas.RecoveryCodes(recovery_codes=codes)


@me_router.post(
    "/mfa/totp/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn MFA off (password and a code)",
)
async def disable_totp(
    body: schemas.ReauthRequest,
    principal: SessionUser,
    request: Request,
    ctx: Context,
    db: DbSession,
) -> None:
    await mfa.disable(
        ctx, db, ClientInfo.of(request), principal, password=body.password, code=body.code
    )


@me_router.post("/mfa/recovery-codes", summary="Replace the recovery codes (password and a code)")
async def regenerate_recovery_codes(
    body: schemas.ReauthRequest,
    principal: SessionUser,
    request: Request,
    ctx: Context,
    db: DbSession,
) -> schemas.RecoveryCodes:
    codes = await mfa.regenerate_recovery_codes(
        ctx, db, ClientInfo.of(request), principal, password=body.password, code=body.code
    )
    return schemas.RecoveryCodes(recovery_codes=codes)


# -- /api-keys -----------------------------------------------------------------------------


@keys_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (the key is in this answer only)",
)
async def create_api_key(
    body: schemas.ApiKeyCreate,
    principal: SessionUser,
    request: Request,
    ctx: Context,
    db: DbSession,
) -> schemas.ApiKeyCreated:
    return await service.create_api_key(ctx, db, ClientInfo.of(request), principal, body)


@keys_router.get("", summary="The signed-in user's API keys (never the secret part)")
async def list_api_keys(principal: SessionUser, db: DbSession) -> list[schemas.ApiKeyOut]:
    keys = await ApiKeyRepository(db).list_for_user(principal.user_id)
    return [service.api_key_out(key) for key in keys]


@keys_router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a key")
async def revoke_api_key(
    key_id: uuid.UUID, principal: SessionUser, request: Request, ctx: Context, db: DbSession
) -> None:
    await service.revoke_api_key(ctx, db, ClientInfo.of(request), principal, key_id)


routers = [auth_router, me_router, keys_router]
