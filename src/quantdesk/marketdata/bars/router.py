"""``/api/v1/market/bars`` and ``/api/v1/analytics/indicators``: stored bars at any
timeframe, and technical indicators computed over them."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from quantdesk.marketdata.bars.indicators import catalogue, indicator_over_bars
from quantdesk.marketdata.bars.repository import MAX_LIMIT, BarStore
from quantdesk.marketdata.bars.trading_sessions import calendar_for
from quantdesk.marketdata.domain import Timeframe, parse_key
from quantdesk.marketdata.schemas import (
    BarOut,
    BarsColumnar,
    BarsRows,
    IndicatorInfo,
    IndicatorOut,
    KeyPath,
    TimeBound,
    end_of,
    start_of,
)
from quantdesk.platform.context import DbSession
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.security.policy import RequireViewer

router = APIRouter(prefix="/api/v1/market", tags=["market data"])
indicators_router = APIRouter(prefix="/api/v1/analytics/indicators", tags=["analytics: indicators"])


def _zone(key: str) -> ZoneInfo:
    """The exchange's clock, on which a plain date in ``from``/``to`` is a local day."""
    try:
        exchange, _ = parse_key(key)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return calendar_for(exchange).timezone


class BarShape(StrEnum):
    COLUMNAR = "columnar"
    ROWS = "rows"


@router.get(
    "/bars/{key}",
    summary="OHLCV + open interest bars",
    description=(
        "Bars opening in ``[from, to)``.  With ``from``, the earliest ``limit`` bars from "
        "it; without, the latest ``limit`` bars before ``to``.  1m and 1d are stored; 5m, "
        "15m, 30m and 1h are built from 1m on the exchange's sessions (NSE bars start at "
        "09:15 IST) and 1w from 1d.  ``shape=columnar`` (default) returns one array per "
        "field (`BarsColumnar`), ``shape=rows`` one object per bar (`BarsRows`).  Prices, "
        "volume and OI are decimal strings.  ``from``/``to`` take a date (the exchange's local "
        "day: ``from`` its start, ``to`` its end), an ISO time with ``Z`` or an offset, or "
        "Unix seconds."
    ),
    response_model=None,
    responses={200: {"model": BarsColumnar | BarsRows}},
)
async def get_bars(
    key: KeyPath,
    _viewer: RequireViewer,
    db: DbSession,
    timeframe: Timeframe = Timeframe.D1,
    from_: Annotated[TimeBound | None, Query(alias="from")] = None,
    to: Annotated[TimeBound | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 5000,
    shape: BarShape = BarShape.COLUMNAR,
) -> Response:
    zone = _zone(key)
    series = await BarStore(db).series(
        key, timeframe, start=start_of(from_, zone), end=end_of(to, zone), limit=limit
    )
    if shape is BarShape.COLUMNAR:
        return Response(series.columnar_json(), media_type="application/json")
    rows = BarsRows(
        key=series.key,
        timeframe=series.timeframe.value,
        bars=[BarOut.model_validate(row) for row in series.rows()],
    )
    return FastJSONResponse(rows.model_dump(mode="json"))


@indicators_router.get(
    "",
    summary="The indicators, their parameters' defaults and their outputs",
    response_model=list[IndicatorInfo],
)
async def list_indicators(_viewer: RequireViewer) -> list[dict[str, object]]:
    return catalogue()


@indicators_router.get(
    "/{name}",
    summary="A technical indicator over stored bars",
    response_model=None,
    responses={200: {"model": IndicatorOut}},
)
async def indicator(
    request: Request,
    _viewer: RequireViewer,
    db: DbSession,
    name: Annotated[str, Path(description="sma, ema, rsi, macd, bbands, atr, adx, vwap, ...")],
    instrument: Annotated[str, Query(description="Instrument key, e.g. NSE:RELIANCE")],
    timeframe: Timeframe = Timeframe.D1,
    start: Annotated[TimeBound | None, Query(alias="from")] = None,
    end: Annotated[TimeBound | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1_000,
    warmup: Annotated[
        int, Query(ge=0, le=5_000, description="Bars before the range fed in first")
    ] = 250,
) -> FastJSONResponse:
    """Returns `t` (bar open times, epoch seconds) and one float column per output (null
    during warm-up), e.g. `?instrument=NSE:RELIANCE&timeframe=1d&timeperiod=14` for RSI."""
    zone = _zone(instrument)
    payload = await indicator_over_bars(
        db,
        name,
        dict(request.query_params),
        instrument=instrument,
        timeframe=timeframe,
        start=start_of(start, zone),
        end=end_of(end, zone),
        limit=limit,
        warmup=warmup,
    )
    return FastJSONResponse(payload)
