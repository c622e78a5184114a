"""Account use cases of a signed-in user: profile, password, sessions, API keys, export and
erasure of personal data."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import after_commit, utcnow
from quantdesk.platform.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from quantdesk.security.api_keys import display_prefix, forget_api_keys, generate_api_key
from quantdesk.security.audit import SecurityEventType, record_security_event
from quantdesk.security.models import SecurityEvent
from quantdesk.security.principal import ROLE_SCOPES, Principal, Role, Scope
from quantdesk.security.services import security_services
from quantdesk.users import schemas
from quantdesk.users.auth import check_password, revoke_all_sessions
from quantdesk.users.mfa import require_reauthentication
from quantdesk.users.models import EMAIL_FIELD, ApiKey, AuthSession, User
from quantdesk.users.profile import forget_profile
from quantdesk.users.repository import (
    ApiKeyRepository,
    RecoveryCodeRepository,
    SecurityEventRepository,
    SessionRepository,
    UserRepository,
)

MAX_LIVE_API_KEYS = 25
ERASED_PASSWORD_HASH = "!erased"  # noqa: S105  # nosec B105 - a marker, deliberately not a hash


def decrypt_email(ctx: AppContext, user: User) -> str:
    if user.email_encrypted is None:
        return ""
    return security_services(ctx).pii.decrypt(user.email_encrypted, field=EMAIL_FIELD)


def user_out(ctx: AppContext, user: User) -> schemas.UserOut:
    return schemas.UserOut(
        id=user.id,
        email=decrypt_email(ctx, user),
        role=Role(user.role),
        is_active=user.is_active,
        mfa_enabled=user.mfa_enabled,
        created_at=user.created_at,
    )


def session_out(session: AuthSession, current: uuid.UUID | None) -> schemas.SessionOut:
    return schemas.SessionOut(
        id=session.id,
        created_at=session.created_at,
        last_used_at=session.last_used_at,
        expires_at=session.expires_at,
        ip=session.ip,
        user_agent=session.user_agent,
        mfa=session.mfa,
        current=session.id == current,
    )


def api_key_out(key: ApiKey) -> schemas.ApiKeyOut:
    return schemas.ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=display_prefix(key.lookup),
        scopes=[Scope(name) for name in key.scopes.split()],
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def event_out(event: SecurityEvent) -> schemas.SecurityEventOut:
    return schemas.SecurityEventOut(
        id=event.id,
        occurred_at=event.occurred_at,
        event_type=event.event_type,
        user_id=event.user_id,
        ip=event.ip,
        user_agent=event.user_agent,
        request_id=event.request_id,
        details=event.details,
    )


async def current_user(db: AsyncSession, principal: Principal) -> User:
    user = await UserRepository(db).get(principal.user_id)
    if user is None:
        raise NotFound("no such user")
    return user


async def change_password(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    principal: Principal,
    body: schemas.PasswordChange,
) -> None:
    email = decrypt_email(ctx, await current_user(db, principal))
    check_password(body.new_password, email=email)
    user = await require_reauthentication(
        ctx, db, client, principal, password=body.current_password, code=body.code
    )
    user.password_hash = await security_services(ctx).passwords.hash(body.new_password)
    user.password_changed_at = utcnow()
    # Whoever knew the old password may hold other sessions: they end now; this one stays.
    await revoke_all_sessions(
        ctx,
        db,
        client,
        user_id=user.id,
        reason=SecurityEventType.PASSWORD_CHANGED,
        keep=principal.session_id,
    )
    # So do API keys: a key minted by whoever held the password would otherwise outlive the
    # change, which is the response to a suspected compromise (docs/security.md).
    await revoke_all_api_keys(ctx, db, user.id)


async def list_sessions(db: AsyncSession, principal: Principal) -> list[schemas.SessionOut]:
    sessions = await SessionRepository(db).active_for_user(principal.user_id)
    return [session_out(session, principal.session_id) for session in sessions]


# -- API keys ------------------------------------------------------------------------------


async def create_api_key(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    principal: Principal,
    body: schemas.ApiKeyCreate,
) -> schemas.ApiKeyCreated:
    role = Role((await current_user(db, principal)).role)
    scopes = set(body.scopes)
    if not scopes <= ROLE_SCOPES[role]:
        extra = ", ".join(sorted(scope.value for scope in scopes - ROLE_SCOPES[role]))
        raise PermissionDenied(f"your role ({role.value}) cannot grant: {extra}")
    if body.expires_at is not None:
        if body.expires_at.tzinfo is None:
            raise InvalidInput("expires_at needs a time zone (e.g. ...Z)")
        if body.expires_at <= utcnow():
            raise InvalidInput("expires_at must be in the future")
    repository = ApiKeyRepository(db)
    if await repository.count_live(principal.user_id) >= MAX_LIVE_API_KEYS:
        raise Conflict(f"at most {MAX_LIVE_API_KEYS} live API keys; revoke one first")
    new = generate_api_key()
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        name=body.name,
        lookup=new.lookup,
        secret_hash=new.secret_hash,
        scopes=" ".join(sorted(scope.value for scope in scopes)),
        created_at=utcnow(),
        expires_at=body.expires_at.astimezone(dt.UTC) if body.expires_at else None,
    )
    db.add(key)
    await db.flush()
    await record_security_event(
        ctx,
        SecurityEventType.API_KEY_CREATED,
        user_id=principal.user_id,
        client=client,
        details={"api_key_id": str(key.id), "scopes": key.scopes},
        session=db,
    )
    return schemas.ApiKeyCreated(**api_key_out(key).model_dump(), key=new.key)


async def revoke_api_key(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    principal: Principal,
    key_id: uuid.UUID,
) -> None:
    key = await ApiKeyRepository(db).get_for_owner(principal.user_id, key_id)
    if key is None:
        raise NotFound("no such API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await record_security_event(
            ctx,
            SecurityEventType.API_KEY_REVOKED,
            user_id=principal.user_id,
            client=client,
            details={"api_key_id": str(key.id)},
            session=db,
        )
    lookups = [key.lookup]
    after_commit(db, lambda: forget_api_keys(ctx, lookups))


async def revoke_all_api_keys(ctx: AppContext, db: AsyncSession, user_id: uuid.UUID) -> None:
    keys = await ApiKeyRepository(db).list_for_user(user_id)
    now = utcnow()
    for key in keys:
        if key.revoked_at is None:
            key.revoked_at = now
    lookups = [key.lookup for key in keys]
    after_commit(db, lambda: forget_api_keys(ctx, lookups))


# -- personal data -------------------------------------------------------------------------


async def export_personal_data(
    ctx: AppContext, db: AsyncSession, principal: Principal
) -> schemas.PersonalDataExport:
    user = await current_user(db, principal)
    sessions = await SessionRepository(db).all_for_user(user.id)
    keys = await ApiKeyRepository(db).list_for_user(user.id)
    events = await SecurityEventRepository(db).for_user(user.id)
    return schemas.PersonalDataExport(
        exported_at=utcnow(),
        user=user_out(ctx, user),
        sessions=[session_out(session, principal.session_id) for session in sessions],
        api_keys=[api_key_out(key) for key in keys],
        security_events=[event_out(event) for event in events],
    )


async def erase_account(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo,
    principal: Principal,
    body: schemas.ReauthRequest,
) -> None:
    """Anonymise the account: personal data gone, credentials dead, other rows intact.

    The user row stays (orders, ledgers and portfolios keep a valid owner), but the e-mail
    ciphertext is dropped, the blind index replaced by a random value, the password and TOTP
    secrets destroyed, every session and key revoked, and addresses and user agents removed
    from sessions and the security log.
    """
    user = await require_reauthentication(
        ctx, db, client, principal, password=body.password, code=body.code
    )
    await revoke_all_sessions(
        ctx, db, client, user_id=user.id, reason=SecurityEventType.ACCOUNT_ERASED, record=False
    )
    await revoke_all_api_keys(ctx, db, user.id)
    await RecoveryCodeRepository(db).delete_for_user(user.id)
    for session in await SessionRepository(db).all_for_user(user.id):
        session.ip = None
        session.user_agent = None
    await SecurityEventRepository(db).anonymise_for_user(user.id)
    now = utcnow()
    user.email_encrypted = None
    user.email_index = f"erased:{uuid.uuid4().hex}"
    # Not an argon2 hash: nothing ever verifies against it.
    user.password_hash = ERASED_PASSWORD_HASH
    user.totp_secret_encrypted = None
    user.totp_pending_encrypted = None
    user.mfa_enabled = False
    user.is_active = False
    user.erased_at = now
    await forget_profile(ctx, user.id)
    await record_security_event(ctx, SecurityEventType.ACCOUNT_ERASED, user_id=user.id, session=db)
