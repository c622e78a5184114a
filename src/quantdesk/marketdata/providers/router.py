"""``/api/v1/providers``: ask a configured market-data provider directly.

Useful to check a provider before a backfill, or to fetch a quote the platform does not
stream.  A provider that is down answers within its deadline as a 503 (or 502 for a bad
answer) naming the provider; it never hangs the request.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query

from quantdesk.marketdata.domain import Timeframe
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.providers.setup import providers_of
from quantdesk.marketdata.schemas import BarOut, InstrumentOut, KeyPath, QuoteOut
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/providers", tags=["market data: providers"])
ProviderName = Annotated[str, Path(description="demo, finnhub, alphavantage or polygon")]


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
    start: Annotated[dt.datetime, Query(alias="from")],
    end: Annotated[dt.datetime, Query(alias="to")],
    timeframe: Annotated[Timeframe, Query(description="1m or 1d")] = Timeframe.D1,
) -> list[BarOut]:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("from/to need a timezone (e.g. 2025-01-01T00:00:00Z)")
    instrument = await InstrumentService(db).get(key)
    bars = await providers_of(ctx).get(name).historical_bars(instrument, timeframe, start, end)
    return [
        BarOut(
            ts=bar.ts, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
            volume=bar.volume, oi=bar.oi,
        )
        for bar in bars
    ]  # fmt: skip
