"""``/api/v1/admin/demo``: script the simulated exchange's quotes and trades (admins only).

A scripted instrument's quote or trade is published on the bus like any tick; the demo
ticker leaves the instrument alone until ``DELETE /quotes/{key}`` hands it back
(:mod:`.scripting`, docs/market-data.md "Scripted markets").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from quantdesk.marketdata.providers.demo.scripting import MarketScript
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.marketdata.schemas import QuoteOut, ScriptedQuoteIn, ScriptedTradeIn, TradeOut
from quantdesk.platform.context import AppContext, Context, DbSession
from quantdesk.platform.db import utcnow
from quantdesk.security.policy import RequireAdmin, require_role
from quantdesk.security.principal import Role

router = APIRouter(
    prefix="/api/v1/admin/demo",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN))],
)

# Kite index symbols contain a space ("%20" in a path); SIM keys do not, but any key parses.
InstrumentKey = Annotated[str, Path(max_length=80, examples=["SIM:ALPHA"])]


def _script(ctx: AppContext, db: DbSession) -> MarketScript:
    return MarketScript(db, ctx.cache, QuoteService(ctx.cache, ctx.bus))


@router.post(
    "/quotes",
    summary="Set a SIM instrument's quote; the demo ticker leaves it alone until handed back",
)
async def script_quote(
    body: ScriptedQuoteIn, _admin: RequireAdmin, ctx: Context, db: DbSession
) -> QuoteOut:
    quote = await _script(ctx, db).set_quote(
        body.key,
        bid=body.bid,
        bid_size=body.bid_size,
        ask=body.ask,
        ask_size=body.ask_size,
        last=body.last,
        now=utcnow(),
    )
    return QuoteOut.of(quote)


@router.post("/trades", summary="Print a trade on a SIM instrument (published on trades.<KEY>)")
async def script_trade(
    body: ScriptedTradeIn, _admin: RequireAdmin, ctx: Context, db: DbSession
) -> TradeOut:
    trade = await _script(ctx, db).print_trade(
        body.key, price=body.price, size=body.size, now=utcnow()
    )
    return TradeOut.of(trade)


@router.delete(
    "/quotes/{key}",
    status_code=204,
    summary="Hand a scripted SIM instrument back to the demo ticker",
)
async def release_quote(
    key: InstrumentKey, _admin: RequireAdmin, ctx: Context, db: DbSession
) -> Response:
    await _script(ctx, db).release(key)
    return Response(status_code=204)
