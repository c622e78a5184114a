"""``/api/v1/strategies``: saved multi-leg strategies (per user), their mark-to-market over
stored bars, Greeks over time and payoff now."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from quantdesk.marketdata.domain import Timeframe
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.security.policy import RequireTrader, RequireViewer, rate_limit
from quantdesk.strategies import placement, saved, service
from quantdesk.strategies.saved_schemas import (
    MarkToMarketOut,
    SavedStrategyIn,
    SavedStrategyOut,
    SavedStrategyPage,
    StrategyOrderIn,
    StrategyOrderOut,
)
from quantdesk.strategies.schemas import StrategyResponse

router = APIRouter(prefix="/api/v1/strategies", tags=["strategies"])
# Placing a template is placing an order: the same per-user budget.
ORDERS_LIMIT = [rate_limit("orders")]


@router.post("", status_code=201, summary="Save a multi-leg strategy")
async def create(
    body: SavedStrategyIn, principal: RequireTrader, db: DbSession
) -> SavedStrategyOut:
    """Legs name instruments of the master (404 for an unknown key), signed lots, entry
    prices and, for options, an IV to fall back on.  A leg with `order_id` follows that
    paper order's fills (it must be yours, on the same instrument)."""
    return await saved.create(db, principal.user_id, body)


@router.post(
    "/orders",
    status_code=201,
    summary="Place a strategy template as one mleg order and save it, legs linked",
    dependencies=ORDERS_LIMIT,
)
async def place_template(
    body: StrategyOrderIn, principal: RequireTrader, ctx: Context, db: DbSession
) -> StrategyOrderOut:
    """The template's options are found in the instrument master (404 names a missing
    leg), placed on the account as one all-or-none mleg order of `lots` combinations, and
    saved as a strategy whose legs follow the leg orders' fills: its `/mtm` is the
    strategy's combined P&L and net Greeks.  Refusals are the order's (docs/trading.md)."""
    return await placement.place_template(ctx, db, principal.user_id, body)


@router.get("", summary="Your saved strategies, oldest first")
async def list_strategies(
    principal: RequireViewer,
    db: DbSession,
    tag: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> SavedStrategyPage:
    items, next_cursor = await saved.page(db, principal.user_id, limit=limit, cursor=cursor,
                                          tag=tag)  # fmt: skip
    return SavedStrategyPage(items=items, next_cursor=next_cursor)


@router.get("/{strategy_id}", summary="One saved strategy")
async def get_strategy(
    strategy_id: uuid.UUID, principal: RequireViewer, db: DbSession
) -> SavedStrategyOut:
    return await saved.get(db, principal.user_id, strategy_id)


@router.put("/{strategy_id}", summary="Replace a saved strategy (409 on a stale version)")
async def update(
    strategy_id: uuid.UUID, body: SavedStrategyIn, principal: RequireTrader, db: DbSession
) -> SavedStrategyOut:
    return await saved.update(db, principal.user_id, strategy_id, body)


@router.delete("/{strategy_id}", status_code=204, summary="Delete a saved strategy")
async def delete(strategy_id: uuid.UUID, principal: RequireTrader, db: DbSession) -> Response:
    await saved.delete(db, principal.user_id, strategy_id)
    return Response(status_code=204)


@router.get("/{strategy_id}/mtm", summary="Mark-to-market P&L per leg and total, and Greeks")
async def mark_to_market(
    strategy_id: uuid.UUID,
    principal: RequireViewer,
    db: DbSession,
    timeframe: Timeframe = Timeframe.D1,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=20_000)] = 1000,
    r: Annotated[float, Query(ge=-0.1, le=1)] = 0.0,
) -> MarkToMarketOut:
    """P&L at each bar's close against the entry price (or the linked order's average
    fill), per leg and in total; net delta, gamma, vega and theta from each option's implied
    volatility at that close and the underlying's close."""
    for bound in (start, end):
        if bound is not None and bound.utcoffset() is None:
            raise InvalidInput("start/end need a timezone (Z or an offset)")
    shell, legs, underlying = await saved.mark_to_market(
        db, principal.user_id, strategy_id, timeframe, start, end, limit, r
    )
    return await run_in_threadpool(saved.marked, shell, legs, underlying, r)


@router.get("/{strategy_id}/payoff", summary="The payoff now: analysis at today's spot")
async def payoff(
    strategy_id: uuid.UUID,
    principal: RequireViewer,
    ctx: Context,
    db: DbSession,
    spot: Annotated[Decimal | None, Query(gt=0)] = None,
) -> StrategyResponse:
    """The analysis of `/analytics/strategies/analyze` for the saved legs at the
    underlying's latest close (or `spot`)."""
    request = await saved.payoff_request(db, principal.user_id, strategy_id, spot)
    spelled = await service.resolve_instruments(ctx.database, request)
    return await run_in_threadpool(service.analyze_request, spelled)
