"""``/api/v1/admin/trading-halts``: the kill switch (admins only; every change audited)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from quantdesk.ops import killswitch, schemas
from quantdesk.platform.client import ClientInfo
from quantdesk.platform.context import Context, DbSession
from quantdesk.security.policy import RequireAdmin, require_role
from quantdesk.security.principal import Role

router = APIRouter(
    prefix="/api/v1/admin/trading-halts",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN))],
)


@router.get("", summary="Trading halts in force (with include_lifted: the history), newest first")
async def list_halts(
    _admin: RequireAdmin,
    db: DbSession,
    include_lifted: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> schemas.HaltList:
    rows = await killswitch.list_halts(db, include_lifted=include_lifted, limit=limit)
    return schemas.HaltList(items=[schemas.HaltOut.of(row) for row in rows])


@router.post(
    "",
    status_code=201,
    summary="Halt new orders: the whole system, one exchange or one instrument",
    responses={200: {"model": schemas.HaltOut, "description": "The same halt already stands"}},
)
async def halt(
    body: schemas.HaltIn,
    principal: RequireAdmin,
    request: Request,
    response: Response,
    ctx: Context,
    db: DbSession,
) -> schemas.HaltOut:
    row, created = await killswitch.halt_trading(
        ctx,
        db,
        scope=body.scope,
        target=body.target,
        reason=body.reason,
        actor=principal.user_id,
        client=ClientInfo.of(request),
    )
    if not created:
        response.status_code = 200
    return schemas.HaltOut.of(row)


@router.post("/{halt_id}/resume", summary="Lift a halt: new orders are accepted again")
async def resume(
    halt_id: uuid.UUID, principal: RequireAdmin, request: Request, ctx: Context, db: DbSession
) -> schemas.HaltOut:
    row = await killswitch.resume_trading(
        ctx, db, halt_id, actor=principal.user_id, client=ClientInfo.of(request)
    )
    return schemas.HaltOut.of(row)
