"""MFA use cases: enrol a TOTP authenticator, confirm it, disable it, recovery codes, and the
second-factor check shared by login, password change, MFA changes and account erasure."""

from __future__ import annotations

import hmac

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from quantdesk.platform.exceptions import Conflict, NotFound, Unauthenticated
from quantdesk.security import mfa as totp
from quantdesk.security.audit import SecurityEventType, record_security_event
from quantdesk.security.principal import Principal
from quantdesk.security.services import security_services
from quantdesk.users.lockout import count_failure, locked_error
from quantdesk.users.models import EMAIL_FIELD, TOTP_FIELD, RecoveryCode, User
from quantdesk.users.profile import forget_profile
from quantdesk.users.repository import RecoveryCodeRepository, UserRepository

RECOVERY_KEY_PURPOSE = "recovery-codes"
TOTP_ISSUER = "quantdesk"


async def _user(db: AsyncSession, principal: Principal) -> User:
    user = await UserRepository(db).get(principal.user_id, for_update=True)
    if user is None:
        raise NotFound("no such user")
    return user


async def verify_second_factor(
    ctx: AppContext, db: AsyncSession, client: ClientInfo | None, user: User, code: str
) -> bool:
    """A TOTP code (once per time step) or an unused recovery code (once, ever).

    The caller holds ``user`` locked (FOR UPDATE / immediate transaction) so two requests
    with the same code cannot both pass.
    """
    services = security_services(ctx)
    if not user.mfa_enabled or user.totp_secret_encrypted is None:
        return False
    if totp.looks_like_totp(code):
        secret = services.pii.decrypt(user.totp_secret_encrypted, field=TOTP_FIELD)
        step = totp.match_totp(secret, code, last_step=user.totp_last_step)
        if step is None:
            return False
        user.totp_last_step = step
        return True
    wanted = totp.hash_recovery_code(services.derived_key(RECOVERY_KEY_PURPOSE), code)
    for row in await RecoveryCodeRepository(db).unused_for_user(user.id):
        if hmac.compare_digest(row.code_hash, wanted):
            row.used_at = utcnow()
            await record_security_event(
                ctx,
                SecurityEventType.RECOVERY_CODE_USED,
                user_id=user.id,
                client=client,
                session=db,
            )
            return True
    return False


async def require_reauthentication(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    principal: Principal,
    *,
    password: str,
    code: str | None,
) -> User:
    """Password, plus a second factor when MFA is on, for sensitive changes; the user locked.

    A wrong password and a wrong second-factor code both count towards the account's
    lockout (``users.lockout``), like failed sign-ins, and a locked account is refused
    before anything is checked: guessing codes here is as slow as guessing them at sign-in.
    A failure is counted and audited in the request's own unit of work, which is committed
    before the 401: the request stays the only writer (on SQLite a second unit of work would
    wait for the lock this one holds), and the count survives the error.
    """
    services = security_services(ctx)
    user = await _user(db, principal)
    if user.locked_until is not None and user.locked_until > utcnow():
        raise locked_error(user.locked_until)
    if not await services.passwords.verify(user.password_hash, password):
        await count_failure(ctx, db, client, user, reason="reauthentication_failed")
        await db.commit()
        raise Unauthenticated("the password is not correct")
    if user.mfa_enabled and (
        code is None or not await verify_second_factor(ctx, db, client, user, code)
    ):
        await record_security_event(
            ctx,
            SecurityEventType.MFA_FAILED,
            user_id=user.id,
            client=client,
            details={"during": "reauthentication", "path": client.path},
            session=db,
        )
        await count_failure(ctx, db, client, user, reason="wrong_mfa_code")
        await db.commit()
        raise Unauthenticated("a valid authenticator or recovery code is required")
    return user


async def enrol(ctx: AppContext, db: AsyncSession, principal: Principal) -> tuple[str, str]:
    """A new pending secret; (secret, otpauth URI).  MFA is on only after ``confirm``."""
    services = security_services(ctx)
    user = await _user(db, principal)
    if user.mfa_enabled:
        raise Conflict("two-factor authentication is already enabled; disable it first")
    secret = totp.new_totp_secret()
    user.totp_pending_encrypted = services.pii.encrypt(secret, field=TOTP_FIELD)
    account = services.pii.decrypt(user.email_encrypted or "", field=EMAIL_FIELD)
    return secret, totp.provisioning_uri(secret, account=account, issuer=TOTP_ISSUER)


async def _new_recovery_codes(ctx: AppContext, db: AsyncSession, user: User) -> list[str]:
    key = security_services(ctx).derived_key(RECOVERY_KEY_PURPOSE)
    await RecoveryCodeRepository(db).delete_for_user(user.id)
    codes = totp.generate_recovery_codes()
    for code in codes:
        db.add(RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(key, code)))
    return codes


async def confirm(
    ctx: AppContext, db: AsyncSession, client: ClientInfo, principal: Principal, code: str
) -> list[str]:
    services = security_services(ctx)
    user = await _user(db, principal)
    if user.mfa_enabled:
        raise Conflict("two-factor authentication is already enabled")
    if user.totp_pending_encrypted is None:
        raise Conflict("start the enrolment first (POST /api/v1/users/me/mfa/totp)")
    secret = services.pii.decrypt(user.totp_pending_encrypted, field=TOTP_FIELD)
    step = totp.match_totp(secret, code, last_step=user.totp_last_step)
    if step is None:
        raise Unauthenticated("the code is not valid")
    user.totp_secret_encrypted = user.totp_pending_encrypted
    user.totp_pending_encrypted = None
    user.totp_last_step = step
    user.mfa_enabled = True
    await forget_profile(ctx, user.id)
    codes = await _new_recovery_codes(ctx, db, user)
    await record_security_event(
        ctx, SecurityEventType.MFA_ENABLED, user_id=user.id, client=client, session=db
    )
    return codes


async def disable(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    principal: Principal,
    *,
    password: str,
    code: str | None,
) -> None:
    user = await require_reauthentication(ctx, db, client, principal, password=password, code=code)
    if not user.mfa_enabled:
        raise Conflict("two-factor authentication is not enabled")
    user.mfa_enabled = False
    user.totp_secret_encrypted = None
    user.totp_pending_encrypted = None
    await forget_profile(ctx, user.id)
    await RecoveryCodeRepository(db).delete_for_user(user.id)
    await record_security_event(
        ctx, SecurityEventType.MFA_DISABLED, user_id=user.id, client=client, session=db
    )


async def regenerate_recovery_codes(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    principal: Principal,
    *,
    password: str,
    code: str | None,
) -> list[str]:
    user = await require_reauthentication(ctx, db, client, principal, password=password, code=code)
    if not user.mfa_enabled:
        raise Conflict("two-factor authentication is not enabled")
    codes = await _new_recovery_codes(ctx, db, user)
    await record_security_event(
        ctx,
        SecurityEventType.RECOVERY_CODES_REGENERATED,
        user_id=user.id,
        client=client,
        session=db,
    )
    return codes
