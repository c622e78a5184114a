"""``/api/v1/accounts``: paper-trading accounts, cash, the ledger, orders, fills, positions.

Thin: each endpoint authorises, parses and calls one use case.  Reads need the viewer role
(an API key: ``read``); everything that moves money needs trader (``trade``).  Order
placement, modification and cancellation count against the ``orders`` rate limit; money-
moving POSTs accept ``Idempotency-Key``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.idempotency import Idempotent
from quantdesk.security.policy import RequireTrader, RequireViewer, rate_limit
from quantdesk.trading import schemas
from quantdesk.trading.orders import OrderService
from quantdesk.trading.placement import placer_of
from quantdesk.trading.service import AccountService

router = APIRouter(prefix="/api/v1/accounts", tags=["paper trading"])
charges_router = APIRouter(prefix="/api/v1/trading", tags=["paper trading"])

PageSize = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=512)]
ORDERS_LIMIT = [rate_limit("orders")]


@router.post(
    "",
    status_code=201,
    response_model=schemas.AccountOut,
    summary="Open a paper-trading account",
)
async def open_account(
    body: schemas.AccountIn,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    idempotency: Idempotent,
) -> Response:
    return await idempotency(
        principal.user_id, lambda: AccountService(ctx, db).create(principal.user_id, body)
    )


@router.get("", summary="Your paper-trading accounts, oldest first")
async def list_accounts(
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> schemas.AccountPage:
    return await AccountService(ctx, db).page(principal.user_id, limit=limit, cursor=cursor)


@router.get("/{account_id}", summary="Balances, buying power, equity and P&L")
async def get_account(
    account_id: uuid.UUID, principal: RequireViewer, ctx: Context, db: DbSession
) -> schemas.AccountOut:
    return await AccountService(ctx, db).get(principal.user_id, account_id)


@router.post("/{account_id}/reset", summary="Back to the starting cash; everything else goes")
async def reset_account(
    account_id: uuid.UUID, principal: RequireTrader, ctx: Context, db: DbSession
) -> schemas.AccountOut:
    return await AccountService(ctx, db).reset(principal.user_id, account_id)


@router.post(
    "/{account_id}/deposits",
    status_code=201,
    response_model=schemas.AccountOut,
    summary="Add cash (idempotent)",
)
async def deposit(
    account_id: uuid.UUID,
    body: schemas.CashMovementIn,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    idempotency: Idempotent,
) -> Response:
    return await idempotency(
        principal.user_id,
        lambda: AccountService(ctx, db).deposit(principal.user_id, account_id, body),
    )


@router.post(
    "/{account_id}/withdrawals",
    status_code=201,
    response_model=schemas.AccountOut,
    summary="Take out free cash",
)
async def withdraw(
    account_id: uuid.UUID,
    body: schemas.CashMovementIn,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    idempotency: Idempotent,
) -> Response:
    return await idempotency(
        principal.user_id,
        lambda: AccountService(ctx, db).withdraw(principal.user_id, account_id, body),
    )


@router.get("/{account_id}/ledger", summary="Journal entries, newest first")
async def ledger(
    account_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    limit: PageSize = 100,
    cursor: Cursor = None,
) -> schemas.LedgerPage:
    return await AccountService(ctx, db).ledger(
        principal.user_id, account_id, limit=limit, cursor=cursor
    )


# --- orders --------------------------------------------------------------------------------
@router.post(
    "/{account_id}/orders",
    status_code=201,
    response_model=schemas.OrderOut,
    summary="Place an order (acknowledged at once; the matcher fills it)",
    dependencies=ORDERS_LIMIT,
)
async def place_order(
    account_id: uuid.UUID,
    body: schemas.OrderIn,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    idempotency: Idempotent,
) -> Response:
    placer = placer_of(ctx)
    if idempotency.key is None and placer is not None:
        # Group commit (trading/placement.py); a keyed request's stored answer must commit
        # with its order, in this request's unit of work.
        return await idempotency(
            principal.user_id, lambda: placer.place(principal.user_id, account_id, body)
        )
    return await idempotency(
        principal.user_id,
        lambda: OrderService(ctx, db).place(principal.user_id, account_id, body),
    )


@router.get("/{account_id}/orders", summary="Orders, newest first")
async def list_orders(
    account_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    status: Annotated[
        str | None, Query(description="open, closed, all, or one status", max_length=20)
    ] = None,
    instrument: Annotated[str | None, Query(max_length=80)] = None,
    after: Annotated[dt.datetime | None, Query(description="Placed at or after")] = None,
    until: Annotated[dt.datetime | None, Query(description="Placed before")] = None,
    limit: PageSize = 100,
    cursor: Cursor = None,
) -> schemas.OrderPage:
    return await OrderService(ctx, db).page(
        principal.user_id,
        account_id,
        limit=limit,
        cursor=cursor,
        status=status,
        instrument=instrument,
        since=after,
        until=until,
    )


@router.delete("/{account_id}/orders", summary="Cancel every open order", dependencies=ORDERS_LIMIT)
async def cancel_all(
    account_id: uuid.UUID, principal: RequireTrader, ctx: Context, db: DbSession
) -> schemas.CancelAllOut:
    return await OrderService(ctx, db).cancel_all(principal.user_id, account_id)


@router.get("/{account_id}/orders/{order_id}", summary="One order")
async def get_order(
    account_id: uuid.UUID,
    order_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
) -> schemas.OrderOut:
    return await OrderService(ctx, db).get(principal.user_id, account_id, order_id)


@router.patch(
    "/{account_id}/orders/{order_id}",
    summary="Change an open order's quantity or prices",
    dependencies=ORDERS_LIMIT,
)
async def modify_order(
    account_id: uuid.UUID,
    order_id: uuid.UUID,
    body: schemas.OrderPatch,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
) -> schemas.OrderOut:
    return await OrderService(ctx, db).modify(principal.user_id, account_id, order_id, body)


@router.delete(
    "/{account_id}/orders/{order_id}", summary="Cancel an open order", dependencies=ORDERS_LIMIT
)
async def cancel_order(
    account_id: uuid.UUID,
    order_id: uuid.UUID,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
) -> schemas.OrderOut:
    return await OrderService(ctx, db).cancel(principal.user_id, account_id, order_id)


@router.get("/{account_id}/orders/{order_id}/events", summary="Every transition of an order")
async def order_events(
    account_id: uuid.UUID,
    order_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
) -> list[schemas.OrderEventOut]:
    return await OrderService(ctx, db).events(principal.user_id, account_id, order_id)


# --- fills and positions -------------------------------------------------------------------
@router.get("/{account_id}/fills", summary="Fills, newest first")
async def fills(
    account_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    order_id: uuid.UUID | None = None,
    limit: PageSize = 100,
    cursor: Cursor = None,
) -> schemas.FillPage:
    return await AccountService(ctx, db).fills(
        principal.user_id, account_id, limit=limit, cursor=cursor, order_id=order_id
    )


@router.get("/{account_id}/positions", summary="Net positions with P&L at the last price")
async def positions(
    account_id: uuid.UUID, principal: RequireViewer, ctx: Context, db: DbSession
) -> schemas.PositionList:
    return await AccountService(ctx, db).positions(principal.user_id, account_id)


@router.get(
    "/{account_id}/holdings",
    summary="Delivery (CNC) holdings: settled and T+1 quantities, with P&L at the last price",
)
async def holdings(
    account_id: uuid.UUID, principal: RequireViewer, ctx: Context, db: DbSession
) -> schemas.DeliveryHoldingList:
    return await AccountService(ctx, db).holdings(principal.user_id, account_id)


@router.get(
    "/{account_id}/margins",
    summary="F&O margin: used, required (hedges recognised), available, per position",
)
async def margins(
    account_id: uuid.UUID, principal: RequireViewer, ctx: Context, db: DbSession
) -> schemas.MarginsOut:
    return await AccountService(ctx, db).margins(principal.user_id, account_id)


@router.post(
    "/{account_id}/positions/{instrument}/close",
    status_code=201,
    summary="Close a position with a market order",
    dependencies=ORDERS_LIMIT,
)
async def close_position(
    account_id: uuid.UUID,
    instrument: str,
    principal: RequireTrader,
    ctx: Context,
    db: DbSession,
    product: Annotated[str | None, Query(pattern="^(cnc|mis|nrml)$")] = None,
) -> schemas.OrderOut:
    return await OrderService(ctx, db).close_position(
        principal.user_id, account_id, instrument, product
    )


# --- charges -------------------------------------------------------------------------------
@charges_router.post(
    "/charges",
    response_model=schemas.ChargesOut,
    summary="What an order will cost: brokerage and statutory charges, itemised",
)
async def preview_charges(
    body: schemas.ChargesIn, principal: RequireViewer, ctx: Context, db: DbSession
) -> schemas.ChargesOut:
    return await OrderService(ctx, db).charges(body)
