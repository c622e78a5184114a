"""Administration: list users, change a role, disable/enable, unlock, read the security log.

A role change or a disable ends the user's sessions and forgets their API keys' cached
verification, so the change bites at once rather than when tokens expire.  Admins cannot
demote or disable themselves (the last admin could lock everyone out of administration).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import after_commit
from quantdesk.platform.exceptions import Conflict, NotFound
from quantdesk.security.api_keys import forget_api_keys
from quantdesk.security.audit import SecurityEventType, record_security_event
from quantdesk.security.principal import Principal, Role
from quantdesk.users import schemas
from quantdesk.users.auth import revoke_all_sessions
from quantdesk.users.models import User
from quantdesk.users.profile import forget_profile
from quantdesk.users.repository import ApiKeyRepository, SecurityEventRepository, UserRepository
from quantdesk.users.service import decrypt_email, event_out


def admin_user_out(ctx: AppContext, user: User) -> schemas.AdminUserOut:
    return schemas.AdminUserOut(
        id=user.id,
        email=decrypt_email(ctx, user),
        role=Role(user.role),
        is_active=user.is_active,
        mfa_enabled=user.mfa_enabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        locked_until=user.locked_until,
        erased=user.erased_at is not None,
    )


async def list_users(
    ctx: AppContext, db: AsyncSession, *, limit: int, cursor: str | None
) -> schemas.UserPage:
    users, next_cursor = await UserRepository(db).page(limit=limit, cursor=cursor)
    return schemas.UserPage(
        items=[admin_user_out(ctx, user) for user in users], next_cursor=next_cursor
    )


async def _target(db: AsyncSession, user_id: uuid.UUID) -> User:
    user = await UserRepository(db).get(user_id, for_update=True)
    if user is None:
        raise NotFound("no such user")
    return user


async def update_user(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo | None,
    actor: Principal | None,
    user_id: uuid.UUID,
    body: schemas.AdminUserUpdate,
) -> schemas.AdminUserOut:
    user = await _target(db, user_id)
    if actor is not None and actor.user_id == user_id:
        raise Conflict("administrators cannot change their own role or status")
    if user.erased_at is not None:
        raise Conflict("the account has been erased")
    actor_id = str(actor.user_id) if actor else "cli"
    changed = False
    if body.role is not None and body.role.value != user.role:
        before, user.role = user.role, body.role.value
        changed = True
        await record_security_event(
            ctx,
            SecurityEventType.ROLE_CHANGED,
            user_id=user.id,
            client=client,
            details={"from": before, "to": user.role, "by": actor_id},
            session=db,
        )
    if body.is_active is not None and body.is_active != user.is_active:
        user.is_active = body.is_active
        changed = True
        event = (
            SecurityEventType.USER_ENABLED if body.is_active else SecurityEventType.USER_DISABLED
        )
        await record_security_event(
            ctx, event, user_id=user.id, client=client, details={"by": actor_id}, session=db
        )
    if changed:
        await forget_profile(ctx, user.id)
        # Access tokens carry the role: the user signs in again to get the new one.
        await revoke_all_sessions(
            ctx,
            db,
            client,
            user_id=user.id,
            reason=SecurityEventType.SESSION_REVOKED,
            record=False,
        )
        # After the commit: dropped sooner, a concurrent request could cache the old role.
        lookups = [key.lookup for key in await ApiKeyRepository(db).list_for_user(user.id)]
        after_commit(db, lambda: forget_api_keys(ctx, lookups))
    return admin_user_out(ctx, user)


async def unlock_user(
    ctx: AppContext,
    db: AsyncSession,
    client: ClientInfo | None,
    actor: Principal | None,
    user_id: uuid.UUID,
) -> schemas.AdminUserOut:
    user = await _target(db, user_id)
    user.locked_until = None
    user.failed_logins = 0
    user.lockouts = 0
    await record_security_event(
        ctx,
        SecurityEventType.USER_UNLOCKED,
        user_id=user.id,
        client=client,
        details={"by": str(actor.user_id) if actor else "cli"},
        session=db,
    )
    return admin_user_out(ctx, user)


async def list_events(
    db: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    user_id: uuid.UUID | None,
    event_type: str | None,
) -> schemas.SecurityEventPage:
    events, next_cursor = await SecurityEventRepository(db).page(
        limit=limit, cursor=cursor, user_id=user_id, event_type=event_type
    )
    return schemas.SecurityEventPage(
        items=[event_out(event) for event in events], next_cursor=next_cursor
    )
