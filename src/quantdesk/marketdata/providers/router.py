"""``/api/v1/providers``: ask a configured market-data provider directly.

Useful to check a provider before a backfill, or to fetch a quote the platform does not
stream.  A provider that is down answers within its deadline as a 503 (or 502 for a bad
answer) naming the provider; it never hangs the request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from quantdesk.marketdata.bars.trading_sessions import calendar_for
from quantdesk.marketdata.domain import Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.setup import providers_of
from quantdesk.marketdata.schemas import (
    BarOut,
    InstrumentOut,
    KeyPath,
    QuoteOut,
    TimeBound,
    end_of,
    start_of,
)
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/providers", tags=["market data: providers"])
ProviderName = Annotated[str, Path(description="demo, finnhub, alphavantage, polygon or kite")]


@router.get("", summary="Configured market-data providers")
async def list_providers(ctx: Context, _viewer: RequireViewer) -> dict[str, list[str]]:
    return {"providers": providers_of(ctx).names()}


@router.get("/{name}/search", summary="Search a provider's instruments")
async def provider_search(
    ctx: Context,
    _viewer: RequireViewer,
    name: ProviderName,
    q: Annotated[str, Query(min_length=1, max_length=64)],
) -> list[InstrumentOut]:
    found = await providers_of(ctx).get(name).search_instruments(q)
    return [InstrumentOut.of(instrument) for instrument in found]


@router.get("/{name}/quote/{key}", summary="A provider's latest quote for an instrument")
async def provider_quote(
    ctx: Context, db: DbSession, _viewer: RequireViewer, name: ProviderName, key: KeyPath
) -> QuoteOut:
    instrument = await InstrumentService(db).get(key)
    return QuoteOut.of(await providers_of(ctx).get(name).quote(instrument))


@router.get("/{name}/bars/{key}", summary="Historical bars straight from a provider")
async def provider_bars(
    ctx: Context,
    db: DbSession,
    _viewer: RequireViewer,
    name: ProviderName,
    key: KeyPath,
    start: Annotated[TimeBound, Query(alias="from")],
    end: Annotated[TimeBound, Query(alias="to")],
    timeframe: Annotated[Timeframe, Query(description="1m or 1d")] = Timeframe.D1,
) -> list[BarOut]:
    instrument = await InstrumentService(db).get(key)
    zone = calendar_for(instrument.exchange).timezone
    first, last = start_of(start, zone), end_of(end, zone)
    if first is None or last is None:  # both are required query parameters
        raise InvalidInput("from and to are required")
    bars = await providers_of(ctx).get(name).historical_bars(instrument, timeframe, first, last)
    return [
        BarOut(
            ts=bar.ts, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
            volume=bar.volume, oi=bar.oi,
        )
        for bar in bars
    ]  # fmt: skip
