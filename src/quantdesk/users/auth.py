"""Signing in: registration, login (with lockout and MFA), refresh rotation, logout.

These use cases manage their own units of work instead of the request's: a failed login must
still record the failure and maybe a lockout, and a reused refresh token must still revoke
its family, although the request itself ends in an error.

Enumeration: an unknown e-mail and a wrong password produce the same 401 body and cost the
same argon2 verification (against a dummy hash).  Lockout (``users.lockout``) counts failures
per account in the database; unknown addresses get the same treatment from a counter in the
cache, so a lockout answer does not reveal that an account exists either.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import (
    Conflict,
    InvalidInput,
    PermissionDenied,
    Unauthenticated,
)
from quantdesk.security.audit import (
    SecurityEventType,
    record_security_event,
)
from quantdesk.security.passwords import password_problems
from quantdesk.security.pii import normalise_email
from quantdesk.security.principal import Role
from quantdesk.security.ratelimiting import enforce_rate_limit
from quantdesk.security.services import SecurityServices, security_services
from quantdesk.security.sessions import forget_sessions
from quantdesk.security.tokens import (
    MFA_CHALLENGE_TYPE,
    REFRESH_TOKEN_PREFIX,
    decode_token,
    hash_secret_token,
    issue_access_token,
    issue_mfa_challenge,
    mfa_audience,
    new_refresh_token,
)
from quantdesk.users.lockout import (
    count_failure,
    locked_error,
    phantom_failure,
    phantom_state,
    register_failure,
)
from quantdesk.users.mfa import verify_second_factor
from quantdesk.users.models import EMAIL_FIELD, AuthSession, RefreshToken, User
from quantdesk.users.repository import RefreshTokenRepository, SessionRepository, UserRepository

MAX_MFA_ATTEMPTS_PER_CHALLENGE = 5


def invalid_credentials() -> Unauthenticated:
    return Unauthenticated("invalid e-mail address or password")


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class MfaRequired:
    challenge_token: str
    expires_in: int
    cookie_mode: bool


def _ip_key(client: ClientInfo) -> str:
    return f"ip:{client.ip or 'unknown'}"


# -- registration --------------------------------------------------------------------------


def check_password(password: str, *, email: str | None = None) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise InvalidInput(
            "the password " + "; ".join(problems),
            errors=[{"field": "password", "message": problem} for problem in problems],
        )


async def create_user(
    ctx: AppContext,
    db: AsyncSession,
    *,
    email: str,
    password: str,
    role: Role,
    client: ClientInfo | None = None,
    event: SecurityEventType = SecurityEventType.REGISTERED,
) -> User:
    services = security_services(ctx)
    check_password(password, email=email)
    # Hashed before the first statement: on SQLite that statement takes the write lock, and
    # the hash is the slowest step of registering.
    password_hash = await services.passwords.hash(password)
    index = services.pii.email_index(email)
    if await UserRepository(db).by_email_index(index) is not None:
        raise Conflict("an account with this e-mail address already exists")
    user = User(
        id=uuid.uuid4(),
        email_encrypted=services.pii.encrypt(normalise_email(email), field=EMAIL_FIELD),
        email_index=index,
        password_hash=password_hash,
        role=role.value,
        is_active=True,
        mfa_enabled=False,
        failed_logins=0,
        lockouts=0,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError:
        raise Conflict("an account with this e-mail address already exists") from None
    await record_security_event(
        ctx, event, user_id=user.id, client=client, details={"role": role.value}, session=db
    )
    return user


async def register(
    ctx: AppContext, db: AsyncSession, client: ClientInfo, *, email: str, password: str
) -> User:
    if not ctx.settings.registration_enabled:
        raise PermissionDenied("registration is closed on this server")
    # Its own, small budget: a 409 tells whether an address has an account (docs/security.md).
    await enforce_rate_limit(ctx, client, "register_ip", _ip_key(client))
    return await create_user(
        ctx,
        db,
        email=email,
        password=password,
        role=Role(ctx.settings.registration_role),
        client=client,
    )


# -- login ---------------------------------------------------------------------------------


async def login(
    ctx: AppContext, client: ClientInfo, *, email: str, password: str, cookie_mode: bool
) -> IssuedTokens | MfaRequired:
    services = security_services(ctx)
    await enforce_rate_limit(ctx, client, "login_ip", _ip_key(client))
    index = services.pii.email_index(email)
    await enforce_rate_limit(ctx, client, "login_account", f"account:{index}")
    async with ctx.database.session() as db:
        user = await UserRepository(db).by_email_index(index)
    if user is None:
        phantom = await phantom_state(ctx, index)
        locked_until = phantom.get("locked_until", 0.0)
        if locked_until > utcnow().timestamp():
            raise locked_error(dt.datetime.fromtimestamp(locked_until, dt.UTC))
        await services.passwords.verify_dummy(password)
        await phantom_failure(ctx, index)
        await record_security_event(
            ctx,
            SecurityEventType.LOGIN_FAILED,
            client=client,
            details={"reason": "unknown_account"},
        )
        raise invalid_credentials()
    if user.locked_until is not None and user.locked_until > utcnow():
        raise locked_error(user.locked_until)
    if not await services.passwords.verify(user.password_hash, password):
        await register_failure(ctx, client, user.id, reason="wrong_password")
        raise invalid_credentials()
    if not user.is_active:
        raise PermissionDenied("this account is disabled")
    new_hash = None
    if services.passwords.needs_rehash(user.password_hash):
        new_hash = await services.passwords.hash(password)
    if user.mfa_enabled:
        if new_hash is not None:
            async with ctx.database.session() as db:
                fresh = await UserRepository(db).get(user.id)
                if fresh is not None:
                    fresh.password_hash = new_hash
        challenge = issue_mfa_challenge(
            services.keys, ctx.settings, user_id=user.id, cookie_mode=cookie_mode
        )
        return MfaRequired(challenge, ctx.settings.mfa_challenge_ttl_s, cookie_mode)
    async with ctx.database.session(immediate=True) as db:
        fresh = await UserRepository(db).get(user.id, for_update=True)
        if fresh is None:  # erased between the two reads
            raise invalid_credentials()
        if new_hash is not None:
            fresh.password_hash = new_hash
        return await start_session(ctx, db, client, fresh, mfa=False)


async def start_session(
    ctx: AppContext, db: AsyncSession, client: ClientInfo, user: User, *, mfa: bool
) -> IssuedTokens:
    """A fresh sign-in: session row, first refresh token, access token, success event."""
    settings = ctx.settings
    services = security_services(ctx)
    now = utcnow()
    user.failed_logins = 0
    user.lockouts = 0
    user.locked_until = None
    user.last_login_at = now
    session = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        created_at=now,
        last_used_at=now,
        expires_at=now + dt.timedelta(seconds=settings.refresh_token_ttl_s),
        mfa=mfa,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    db.add(session)
    refresh = new_refresh_token()
    db.add(
        RefreshToken(id=uuid.uuid4(), session_id=session.id, token_hash=hash_secret_token(refresh))
    )
    await db.flush()
    await record_security_event(
        ctx,
        SecurityEventType.LOGIN_SUCCEEDED,
        user_id=user.id,
        client=client,
        details={"session_id": str(session.id), "mfa": mfa},
        session=db,
    )
    return _tokens(services, ctx, user, session, refresh)


def _tokens(
    services: SecurityServices,
    ctx: AppContext,
    user: User,
    session: AuthSession,
    refresh: str,
) -> IssuedTokens:
    settings = ctx.settings
    access = issue_access_token(
        services.keys, settings, user_id=user.id, session_id=session.id, role=Role(user.role)
    )
    absolute_left = int((session.expires_at - utcnow()).total_seconds())
    refresh_left = min(absolute_left, settings.refresh_token_idle_ttl_s)
    return IssuedTokens(access, settings.access_token_ttl_s, refresh, refresh_left, session.id)


async def login_mfa(
    ctx: AppContext, client: ClientInfo, *, challenge_token: str, code: str
) -> tuple[IssuedTokens, bool]:
    """Second step: (tokens, cookie mode asked for at the first step)."""
    services = security_services(ctx)
    await enforce_rate_limit(ctx, client, "auth_ip", _ip_key(client))
    claims = decode_token(
        services.keys,
        challenge_token,
        token_type=MFA_CHALLENGE_TYPE,
        audience=mfa_audience(ctx.settings),
        issuer=ctx.settings.token_issuer,
    )
    jti = str(claims["jti"])
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise Unauthenticated("the challenge is invalid") from None
    attempts_key = f"mfa-challenge:{jti}"
    attempts_ttl = float(ctx.settings.mfa_challenge_ttl_s + 60)
    # Counted before the code is looked at, in one atomic step (Redis INCR): concurrent
    # guesses with one challenge each get their own number, so at most the limit of them
    # reach the check.  A get-then-set here let 30 concurrent guesses check 10-12 codes.
    if await ctx.cache.incr(attempts_key, attempts_ttl) > MAX_MFA_ATTEMPTS_PER_CHALLENGE:
        raise Unauthenticated("the challenge is used up; sign in again")
    tokens: IssuedTokens | None = None
    async with ctx.database.session(immediate=True) as db:
        user = await UserRepository(db).get(user_id, for_update=True)
        if user is None or not user.is_active or not user.mfa_enabled:
            raise Unauthenticated("the challenge is invalid")
        if user.locked_until is not None and user.locked_until > utcnow():
            raise locked_error(user.locked_until)
        if await verify_second_factor(ctx, db, client, user, code):
            tokens = await start_session(ctx, db, client, user, mfa=True)
        else:
            # Counted under the row lock taken above, in the unit of work that checked the
            # code: the next guess, waiting for that lock, already sees this failure (and
            # the lockout it may cause).
            await record_security_event(
                ctx,
                SecurityEventType.MFA_FAILED,
                user_id=user.id,
                client=client,
                details={"during": "login"},
                session=db,
            )
            await count_failure(ctx, db, client, user, reason="wrong_mfa_code")
    if tokens is None:
        raise Unauthenticated("the code is not valid")
    # A used challenge is spent: it cannot start a second session.
    await ctx.cache.set(attempts_key, str(MAX_MFA_ATTEMPTS_PER_CHALLENGE).encode(), attempts_ttl)
    return tokens, bool(claims.get("cookie", False))


# -- refresh and logout --------------------------------------------------------------------


async def refresh(ctx: AppContext, client: ClientInfo, *, refresh_token: str) -> IssuedTokens:
    """Rotate: the presented token is spent and a new one issued in the same session.

    Presenting a spent token again means it was copied: the whole session (every token
    rotated from the same sign-in) is revoked and a security event written.
    """
    services = security_services(ctx)
    settings = ctx.settings
    await enforce_rate_limit(ctx, client, "auth_ip", _ip_key(client))
    invalid = Unauthenticated("the refresh token is invalid or expired")
    if not refresh_token.startswith(REFRESH_TOKEN_PREFIX):
        raise invalid
    now = utcnow()
    reused: AuthSession | None = None
    issued: IssuedTokens | None = None
    async with ctx.database.session(immediate=True) as db:
        row = await RefreshTokenRepository(db).by_hash(hash_secret_token(refresh_token))
        if row is None:
            raise invalid
        session = await db.get(AuthSession, row.session_id, with_for_update=True)
        user = await UserRepository(db).get(session.user_id) if session else None
        if session is None or user is None:
            raise invalid
        if row.rotated_at is not None:
            if session.revoked_at is None:
                session.revoked_at = now
                session.revoked_reason = "refresh_reuse"
            await record_security_event(
                ctx,
                SecurityEventType.REFRESH_REUSED,
                user_id=user.id,
                client=client,
                details={"session_id": str(session.id)},
                session=db,
            )
            reused = session
        elif (
            session.revoked_at is not None
            or session.expires_at <= now
            or session.last_used_at + dt.timedelta(seconds=settings.refresh_token_idle_ttl_s) <= now
            or not user.is_active
        ):
            raise invalid
        else:
            row.rotated_at = now
            session.last_used_at = now
            new_token = new_refresh_token()
            db.add(
                RefreshToken(
                    id=uuid.uuid4(), session_id=session.id, token_hash=hash_secret_token(new_token)
                )
            )
            issued = _tokens(services, ctx, user, session, new_token)
    if reused is not None:
        await forget_sessions(ctx, [reused.id])
        raise invalid
    assert issued is not None  # noqa: S101 - every other path raised
    return issued


async def revoke_session(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    *,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    event: SecurityEventType,
) -> bool:
    session = await SessionRepository(db).get_for_owner(user_id, session_id)
    if session is None:
        return False
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        session.revoked_reason = event.value
    await record_security_event(
        ctx,
        event,
        user_id=user_id,
        client=client,
        details={"session_id": str(session_id)},
        session=db,
    )
    await forget_sessions(ctx, [session_id])
    return True


async def revoke_all_sessions(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo | None,
    *,
    user_id: uuid.UUID,
    reason: SecurityEventType,
    keep: uuid.UUID | None = None,
    record: bool = True,
) -> list[uuid.UUID]:
    ids = await SessionRepository(db).revoke_all(user_id, reason=reason.value, keep=keep)
    if record:
        await record_security_event(
            ctx,
            reason,
            user_id=user_id,
            client=client,
            details={"sessions": len(ids)},
            session=db,
        )
    await forget_sessions(ctx, ids)
    return ids
