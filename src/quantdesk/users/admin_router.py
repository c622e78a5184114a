"""``/api/v1/admin``: user administration and the security event log (admins only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import NotFound
from quantdesk.security.policy import RequireAdmin, require_role
from quantdesk.security.principal import Role
from quantdesk.users import admin, schemas
from quantdesk.users.repository import UserRepository

router = APIRouter(
    prefix="/api/v1/admin",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN))],
)

PageSize = Annotated[int, Query(ge=1, le=200)]


@router.get("/users", summary="Users, oldest first (cursor pagination)")
async def list_users(
    _admin: RequireAdmin,
    ctx: Context,
    db: DbSession,
    limit: PageSize = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> schemas.UserPage:
    return await admin.list_users(ctx, db, limit=limit, cursor=cursor)


@router.get("/users/{user_id}", summary="One user")
async def get_user(
    user_id: uuid.UUID, _admin: RequireAdmin, ctx: Context, db: DbSession
) -> schemas.AdminUserOut:
    user = await UserRepository(db).get(user_id)
    if user is None:
        raise NotFound("no such user")
    return admin.admin_user_out(ctx, user)


@router.patch("/users/{user_id}", summary="Change a user's role or disable/enable them")
async def update_user(
    user_id: uuid.UUID,
    body: schemas.AdminUserUpdate,
    principal: RequireAdmin,
    request: Request,
    ctx: Context,
    db: DbSession,
) -> schemas.AdminUserOut:
    return await admin.update_user(ctx, db, ClientInfo.of(request), principal, user_id, body)


@router.post("/users/{user_id}/unlock", summary="Lift a sign-in lockout")
async def unlock_user(
    user_id: uuid.UUID, principal: RequireAdmin, request: Request, ctx: Context, db: DbSession
) -> schemas.AdminUserOut:
    return await admin.unlock_user(ctx, db, ClientInfo.of(request), principal, user_id)


@router.get("/security-events", summary="The security event log, newest first")
async def list_security_events(
    _admin: RequireAdmin,
    db: DbSession,
    limit: PageSize = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    user_id: uuid.UUID | None = None,
    event_type: Annotated[str | None, Query(max_length=48)] = None,
) -> schemas.SecurityEventPage:
    return await admin.list_events(
        db, limit=limit, cursor=cursor, user_id=user_id, event_type=event_type
    )
