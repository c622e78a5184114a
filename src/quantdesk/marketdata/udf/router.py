"""TradingView's UDF datafeed protocol under ``/udf``, for the Charting Library.

Point ``new Datafeeds.UDFCompatibleDatafeed("https://host/udf")`` at it.  Endpoints and field
names follow TradingView's UDF specification: ``config``, ``symbols`` (SymbolInfo),
``search``, ``history``, ``quotes`` (watchlists, the legend's last price) and ``time``.
``history`` answers ``{"s": "ok", t, o, h, l, c, v}`` and ``quotes``
``{"s": "ok", "d": [{"s", "n", "v": {ch, chp, lp, bid, ask, ...}}]}``, prices as JSON
*numbers* (the spec requires numbers, unlike the rest of our API),
``{"s": "no_data", "nextTime": <unix s>}`` when the range is empty but older bars exist, and
``{"s": "error", "errmsg": …}`` for an unknown symbol or resolution.  Protocol-level errors
are HTTP 200 with ``s: error``, as the UDF adapter reads the body, not the status.

Auth: ``config`` and ``time`` are public (they reveal nothing); ``symbols``, ``search``,
``history`` and ``quotes`` need a ``read``-scoped credential: an API key sent as
``Authorization: Bearer qd_…`` (the headers of the datafeed's ``Requester``, or a reverse
proxy that adds it), or the dashboard's cookie session on the same site.  Those failures
are problem+json 401/403, before UDF semantics apply.  The library on another origin needs
that origin in ``QUANTDESK_CORS_ORIGINS`` (``docs/market-data.md``, "TradingView").
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from quantdesk.marketdata.bars.prep import price_scale
from quantdesk.marketdata.bars.repository import MAX_LIMIT, BarSeries, BarStore
from quantdesk.marketdata.bars.trading_sessions import REGULAR_HOURS, calendar_for
from quantdesk.marketdata.calendars import CalendarDataUnavailable
from quantdesk.marketdata.domain import (
    Exchange,
    Instrument,
    InstrumentType,
    Quote,
    Timeframe,
    make_key,
)
from quantdesk.marketdata.instruments.service import InstrumentFilter, InstrumentService
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import Context, DbSession
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.responses import FastJSONResponse
from quantdesk.security.policy import Public, RequireViewer

router = APIRouter(prefix="/udf", tags=["tradingview udf"])
# 1900-01-01 to 2200-01-01: the library sends no bars request outside it, and a larger
# number would overflow the conversion to a datetime.
UNIX_MIN, UNIX_MAX = -2_208_988_800, 7_258_118_400

RESOLUTIONS: dict[str, Timeframe] = {
    "1": Timeframe.M1,
    "3": Timeframe.M3,
    "5": Timeframe.M5,
    "10": Timeframe.M10,
    "15": Timeframe.M15,
    "30": Timeframe.M30,
    "60": Timeframe.H1,
    "1D": Timeframe.D1,
    "D": Timeframe.D1,
    "1W": Timeframe.W1,
    "W": Timeframe.W1,
}
SUPPORTED_RESOLUTIONS = ["1", "3", "5", "10", "15", "30", "60", "1D", "1W"]
INTRADAY_MULTIPLIERS = ["1", "3", "5", "10", "15", "30", "60"]
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
    Exchange.BFO,
    Exchange.MCX,
    Exchange.CDS,
    Exchange.BCD,
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


# The library asks for the symbols of a watchlist in one request; as many as /market/quotes.
MAX_QUOTE_SYMBOLS = 200


def _number(value: Decimal | None) -> float | None:
    # UDF wants JSON numbers; a price of ours is exact to its tick, which a float round-trips.
    return float(value) if value is not None else None


def _quote_values(row: InstrumentRow, quote: Quote, day: BarSeries | None) -> dict[str, Any]:
    change = quote.change
    if change is None and quote.prev_close is not None:
        change = quote.last - quote.prev_close
    percent = None
    if change is not None and quote.prev_close:
        percent = change / quote.prev_close * 100
    values: dict[str, Any] = {
        "ch": _number(change),
        "chp": round(float(percent), 2) if percent is not None else None,
        "short_name": row.symbol,
        "exchange": row.exchange,
        "description": row.name,
        "lp": _number(quote.last),
        "ask": _number(quote.ask),
        "bid": _number(quote.bid),
        "prev_close_price": _number(quote.prev_close),
        "volume": _number(quote.volume),
    }
    if quote.ask is not None and quote.bid is not None:
        values["spread"] = _number(quote.ask - quote.bid)
    if day is not None:
        values.update(
            open_price=float(day.open[-1]),
            high_price=float(day.high[-1]),
            low_price=float(day.low[-1]),
        )
    # The library treats a missing field as unknown; null would be drawn as a value.
    return {name: value for name, value in values.items() if value is not None}


async def _todays_bar(store: BarStore, row: InstrumentRow, quote: Quote) -> BarSeries | None:
    """The daily bar of the quote's session (exchange-local date), if stored: the day's
    open, high and low, which a quote does not carry."""
    exchange = Exchange(row.exchange)
    session_day = quote.ts.astimezone(calendar_for(exchange).timezone).date()
    bars = await store.series(row, Timeframe.D1, end=quote.ts + dt.timedelta(seconds=1), limit=1)
    if len(bars) and dt.datetime.fromtimestamp(int(bars.ts[-1]), dt.UTC).date() == session_day:
        return bars
    return None


@router.get("/quotes", summary="Latest quotes (UDF shape; prices as numbers)")
async def quotes(
    _viewer: RequireViewer,
    ctx: Context,
    db: DbSession,
    symbols: Annotated[
        str,
        Query(max_length=8_000, description="Comma-separated, as the library sends them"),
    ],
) -> FastJSONResponse:
    wanted = [symbol.strip() for symbol in symbols.split(",") if symbol.strip()]
    if not wanted:
        return _error("give at least one symbol")
    if len(wanted) > MAX_QUOTE_SYMBOLS:
        return _error(f"at most {MAX_QUOTE_SYMBOLS} symbols per request")
    rows = {symbol: await _resolve(db, symbol) for symbol in dict.fromkeys(wanted)}
    keys = [make_key(Exchange(row.exchange), row.symbol) for row in rows.values() if row]
    found = await QuoteService(ctx.cache, ctx.bus).get_many(keys)
    store = BarStore(db)
    answers: list[dict[str, Any]] = []
    for symbol in wanted:
        row = rows[symbol]
        quote = found.get(make_key(Exchange(row.exchange), row.symbol)) if row else None
        if row is None or quote is None:
            # ``n`` is the symbol exactly as requested: the library matches answers by it.
            reason = "unknown_symbol" if row is None else "no_quote"
            answers.append({"s": "error", "n": symbol, "v": {}, "errmsg": reason})
            continue
        day = await _todays_bar(store, row, quote)
        answers.append({"s": "ok", "n": symbol, "v": _quote_values(row, quote, day)})
    return FastJSONResponse({"s": "ok", "d": answers})
