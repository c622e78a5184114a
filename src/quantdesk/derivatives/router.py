"""``/api/v1/analytics``: option chains, futures, and batch option pricing / implied vol.

Thin: each endpoint parses its input, calls one function of :mod:`.service` and returns it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from quantdesk.derivatives import service
from quantdesk.derivatives.schemas import (
    ChainOut,
    FuturesOut,
    GreeksRequest,
    GreeksResponse,
    ImpliedVolRequest,
    ImpliedVolResponse,
)
from quantdesk.marketdata.domain import Exchange
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/analytics")
CHAINS = "analytics: chains and futures"
OPTIONS = "analytics: options"


@router.get(
    "/chain/{underlying}",
    tags=[CHAINS],
    summary="Option chain with IV, Greeks and chain analytics",
    # The payload is built as columns and sent through orjson; the model documents it.
    response_model=None,
    responses={200: {"model": ChainOut}},
)
async def option_chain_analytics(
    ctx: Context,
    db: DbSession,
    _viewer: RequireViewer,
    underlying: Annotated[str, Path(description="Derivatives root, e.g. NIFTY, BANKNIFTY, SPY")],
    expiry: Annotated[dt.date | None, Query(description="Default: the nearest expiry")] = None,
    exchange: Annotated[Literal["NFO", "BFO", "MCX", "CDS", "BCD", "OPRA"] | None, Query()] = None,
    r: Annotated[float | None, Query(ge=-0.5, le=1, description="Default by currency")] = None,
    q: Annotated[float, Query(ge=-0.5, le=1, description="Dividend yield")] = 0.0,
) -> FastJSONResponse:
    """Per strike: call and put marks (mid, else last), OI and its change, volume, implied
    vol, delta, gamma, per-day theta, per-point vega and OI buildup.  For the chain: spot and
    forward, ATM strike and IV, max pain, PCR (OI and volume), 25-delta risk reversal and
    butterfly, the IV smile, gamma exposure per strike and total, and the expected move."""
    wanted = Exchange(exchange) if exchange else None
    payload = await service.chain_analytics(
        db,
        QuoteService(ctx.cache, ctx.bus),
        underlying.upper(),
        expiry=expiry,
        exchange=wanted,
        r=r,
        q=q,
    )
    return FastJSONResponse(payload)


@router.get(
    "/futures/{underlying}",
    tags=[CHAINS],
    summary="Futures basis, carry, rollover and OI buildup",
    response_model=None,
    responses={200: {"model": FuturesOut}},
)
async def futures_analytics(
    ctx: Context,
    db: DbSession,
    _viewer: RequireViewer,
    underlying: Annotated[str, Path(description="Derivatives root, e.g. NIFTY, RELIANCE")],
    r: Annotated[float | None, Query(ge=-0.5, le=1, description="For fair value")] = None,
) -> FastJSONResponse:
    """Every listed future on `underlying` with its price, basis (absolute and %), annualised
    cost of carry implied by the basis, cost-of-carry fair value at `r`, OI and its change,
    and the OI buildup reading (long buildup, short buildup, short covering, long unwinding);
    plus the rollover share of OI in later expiries and the near/next calendar spread."""
    payload = await service.futures_analytics(
        db, QuoteService(ctx.cache, ctx.bus), underlying.upper(), r=r
    )
    return FastJSONResponse(payload)


@router.post(
    "/options/greeks",
    tags=[OPTIONS],
    summary="Price and Greeks for a batch of European options",
    response_model=GreeksResponse,
    response_class=FastJSONResponse,
)
async def batch_greeks(request: GreeksRequest, _principal: RequireViewer) -> FastJSONResponse:
    """Black-Scholes-Merton (or Black-76) price, delta, gamma, vega, theta, rho, vanna, volga
    and charm in QuantLib's conventions, plus per-day theta and per-point vega.  Rows with
    invalid inputs come back as nulls; the batch never fails because of one bad row."""
    return FastJSONResponse(await run_in_threadpool(service.greeks_payload, request))


@router.post(
    "/options/implied-vol",
    tags=[OPTIONS],
    summary="Implied volatility for a batch of option prices",
    response_model=ImpliedVolResponse,
    response_class=FastJSONResponse,
)
async def batch_implied_vol(
    request: ImpliedVolRequest, _principal: RequireViewer
) -> FastJSONResponse:
    """Solves to 1e-10 in volatility wherever the price is inside the no-arbitrage bounds;
    elsewhere the row is null with a reason code."""
    return FastJSONResponse(await run_in_threadpool(service.implied_vol_payload, request))
