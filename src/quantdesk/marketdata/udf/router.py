"""TradingView's UDF datafeed protocol under ``/udf``, for the Charting Library.

Point ``new Datafeeds.UDFCompatibleDatafeed("https://host/udf")`` at it.  Endpoints and field
names follow TradingView's UDF specification: ``config``, ``symbols`` (SymbolInfo),
``search``, ``history`` and ``time``.  ``history`` answers ``{"s": "ok", t, o, h, l, c, v}``
with prices as JSON *numbers* (the spec requires numbers, unlike the rest of our API),
``{"s": "no_data", "nextTime": <unix s>}`` when the range is empty but older bars exist, and
``{"s": "error", "errmsg": …}`` for an unknown symbol or resolution.  Protocol-level errors
are HTTP 200 with ``s: error``, as the UDF adapter reads the body, not the status.

Auth: ``config`` and ``time`` are public (they reveal nothing); ``symbols``, ``search`` and
``history`` need a ``read``-scoped credential, which in a browser means an API key sent as
``Authorization: Bearer qd_…`` (configure the adapter's requester headers, or let a reverse
proxy add it).  Those failures are problem+json 401/403, before UDF semantics apply.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from quantdesk.marketdata.bars.prep import price_scale
from quantdesk.marketdata.bars.repository import MAX_LIMIT, BarStore
from quantdesk.marketdata.bars.trading_sessions import REGULAR_HOURS, calendar_for
from quantdesk.marketdata.calendars import CalendarDataUnavailable
from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType, Timeframe, make_key
from quantdesk.marketdata.instruments.service import InstrumentFilter, InstrumentService
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.platform.context import DbSession
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.security.policy import Public, RequireViewer

router = APIRouter(prefix="/udf", tags=["tradingview udf"])
# 1900-01-01 to 2200-01-01: the library sends no bars request outside it, and a larger
# number would overflow the conversion to a datetime.
UNIX_MIN, UNIX_MAX = -2_208_988_800, 7_258_118_400

RESOLUTIONS: dict[str, Timeframe] = {
    "1": Timeframe.M1,
    "5": Timeframe.M5,
    "15": Timeframe.M15,
    "30": Timeframe.M30,
    "60": Timeframe.H1,
    "1D": Timeframe.D1,
    "D": Timeframe.D1,
    "1W": Timeframe.W1,
    "W": Timeframe.W1,
}
SUPPORTED_RESOLUTIONS = ["1", "5", "15", "30", "60", "1D", "1W"]
INTRADAY_MULTIPLIERS = ["1", "5", "15", "30", "60"]
SYMBOL_TYPES: dict[InstrumentType, str] = {
    InstrumentType.EQUITY: "stock",
    InstrumentType.ETF: "fund",
    InstrumentType.INDEX: "index",
    InstrumentType.FUTURE: "futures",
    InstrumentType.OPTION: "option",
}
_TYPES_BY_NAME = {name: kind for kind, name in SYMBOL_TYPES.items()}
# A bare symbol (no EXCHANGE: prefix) resolves on the first exchange that lists it.
_RESOLVE_ORDER = (
    Exchange.NSE,
    Exchange.BSE,
    Exchange.NASDAQ,
    Exchange.NYSE,
    Exchange.NFO,
    Exchange.OPRA,
)


def _error(message: str) -> FastJSONResponse:
    return FastJSONResponse({"s": "error", "errmsg": message})


@router.get("/config", dependencies=[Public], summary="Datafeed configuration")
async def config() -> dict[str, Any]:
    return {
        "supports_search": True,
        "supports_group_request": False,
        "supports_marks": False,
        "supports_timescale_marks": False,
        "supports_time": True,
        "supported_resolutions": SUPPORTED_RESOLUTIONS,
        "exchanges": [
            {"value": "", "name": "All Exchanges", "desc": ""},
            *({"value": e.value, "name": e.value, "desc": e.value} for e in Exchange),
        ],
        "symbols_types": [
            {"name": "All types", "value": ""},
            *({"name": name.capitalize(), "value": name} for name in SYMBOL_TYPES.values()),
        ],
    }


@router.get("/time", dependencies=[Public], summary="Server time, Unix seconds")
async def server_time() -> PlainTextResponse:
    return PlainTextResponse(str(int(dt.datetime.now(dt.UTC).timestamp())))


async def _resolve(db: DbSession, symbol: str) -> InstrumentRow | None:
    service = InstrumentService(db)
    text = symbol.strip().upper()
    try:
        if ":" in text:
            return await service.get_row(text)
        rows = await service.get_rows([make_key(e, text) for e in _RESOLVE_ORDER])
    except (NotFound, InvalidInput):
        return None
    return next((rows[k] for k in (make_key(e, text) for e in _RESOLVE_ORDER) if k in rows), None)


def _session_holidays(exchange: Exchange) -> str:
    calendar = calendar_for(exchange)
    year = dt.datetime.now(dt.UTC).year
    days: list[str] = []
    for wanted in (year, year + 1):
        try:
            days += [h.date.strftime("%Y%m%d") for h in calendar.holidays(wanted)]
        except CalendarDataUnavailable:
            break  # next year's holidays are not published yet
    return ",".join(days)


def symbol_info(row: InstrumentRow) -> dict[str, Any]:
    """SymbolInfo for the Charting Library (price scale from the instrument's tick size)."""
    exchange = Exchange(row.exchange)
    scale = price_scale(row.tick_size)
    pricescale = 10**scale
    return {
        "name": row.symbol,
        "ticker": make_key(exchange, row.symbol),
        "full_name": make_key(exchange, row.symbol),
        "description": row.name,
        "type": SYMBOL_TYPES[InstrumentType(row.type)],
        "exchange": exchange.value,
        "listed_exchange": exchange.value,
        "timezone": calendar_for(exchange).timezone.key,
        "session": REGULAR_HOURS[exchange],
        "session_holidays": _session_holidays(exchange),
        "format": "price",
        "minmov": int(row.tick_size * pricescale),
        "pricescale": pricescale,
        "has_intraday": True,
        "has_daily": True,
        "has_weekly_and_monthly": True,
        "intraday_multipliers": INTRADAY_MULTIPLIERS,
        "supported_resolutions": SUPPORTED_RESOLUTIONS,
        "volume_precision": 0,
        "currency_code": row.currency,
    }


@router.get("/symbols", summary="Resolve a symbol to its SymbolInfo")
async def symbols(
    _viewer: RequireViewer, db: DbSession, symbol: Annotated[str, Query(max_length=80)]
) -> FastJSONResponse:
    row = await _resolve(db, symbol)
    if row is None:
        return _error(f"unknown_symbol {symbol}")
    return FastJSONResponse(symbol_info(row))


@router.get("/search", summary="Symbol search")
async def search(
    _viewer: RequireViewer,
    db: DbSession,
    query: Annotated[str, Query(max_length=64)] = "",
    type: Annotated[str, Query(max_length=16)] = "",
    exchange: Annotated[str, Query(max_length=16)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
) -> list[dict[str, str]]:
    try:
        exchange_filter = Exchange(exchange.upper()) if exchange else None
    except ValueError:
        return []
    if type and type not in _TYPES_BY_NAME:
        return []
    criteria = InstrumentFilter(
        q=query or None, exchange=exchange_filter, type=_TYPES_BY_NAME.get(type) if type else None
    )
    page = await InstrumentService(db).search(criteria, limit=limit)
    ranked = sorted(page.items, key=lambda i: i.symbol != query.strip().upper())
    return [_search_item(i) for i in ranked]


def _search_item(instrument: Instrument) -> dict[str, str]:
    return {
        "symbol": instrument.symbol,
        "full_name": instrument.key,
        "description": instrument.name,
        "exchange": instrument.exchange.value,
        "ticker": instrument.key,
        "type": SYMBOL_TYPES[instrument.type],
    }


def _numbers(values: list[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array(values, dtype=np.float64)


@router.get("/history", summary="Bars (UDF shape; prices as numbers)")
async def history(
    _viewer: RequireViewer,
    db: DbSession,
    symbol: Annotated[str, Query(max_length=80)],
    resolution: Annotated[str, Query(max_length=8)],
    from_: Annotated[
        int, Query(alias="from", ge=UNIX_MIN, le=UNIX_MAX, description="Unix seconds, inclusive")
    ],
    to: Annotated[int, Query(ge=UNIX_MIN, le=UNIX_MAX, description="Unix seconds, exclusive")],
    countback: Annotated[
        int | None, Query(ge=1, description="Bars wanted ending at ``to``; overrides from")
    ] = None,
) -> FastJSONResponse:
    timeframe = RESOLUTIONS.get(resolution.upper())
    if timeframe is None:
        return _error(
            f"unsupported resolution {resolution}; use {', '.join(SUPPORTED_RESOLUTIONS)}"
        )
    if countback is None and from_ >= to:
        return _error("from must be before to")
    row = await _resolve(db, symbol)
    if row is None:
        return _error(f"unknown_symbol {symbol}")
    store = BarStore(db)
    end = dt.datetime.fromtimestamp(to, dt.UTC)
    if countback is not None:
        series = await store.series(row, timeframe, end=end, limit=min(countback, MAX_LIMIT))
    else:
        start = dt.datetime.fromtimestamp(from_, dt.UTC)
        series = await store.series(row, timeframe, start=start, end=end, limit=MAX_LIMIT)
    if len(series) == 0:
        # ``nextTime``: the closest earlier bar, so the library can jump over the gap.
        before = dt.datetime.fromtimestamp(from_, dt.UTC) if countback is None else end
        earlier = await store.series(row, timeframe, end=before, limit=1)
        if len(earlier):
            return FastJSONResponse({"s": "no_data", "nextTime": int(earlier.ts[-1])})
        return FastJSONResponse({"s": "no_data"})
    return FastJSONResponse(
        {
            "s": "ok",
            "t": series.ts,
            "o": _numbers(series.open),
            "h": _numbers(series.high),
            "l": _numbers(series.low),
            "c": _numbers(series.close),
            "v": _numbers(series.volume),
        }
    )
