"""Which calendar an instrument trades on, and its sessions as arrays for resampling.

NFO (NSE's F&O segment) keeps the cash market's hours, BFO BSE's; the currency segments (CDS,
BCD) trade 09:00-17:00 IST and MCX 09:00-23:30/23:55 IST on NSE's trading days (MCX's evening
sessions on holidays from the calendars' override table); US listed options (OPRA) follow the
NYSE calendar, which the calendars package names ``US_OPTIONS``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from quantdesk.marketdata.bars.resample import SessionBounds
from quantdesk.marketdata.calendars import ExchangeCalendar, get_calendar
from quantdesk.marketdata.domain import Exchange

CALENDAR_CODE: dict[Exchange, str] = {
    Exchange.NSE: "NSE",
    Exchange.NFO: "NFO",
    Exchange.BSE: "BSE",
    Exchange.BFO: "BFO",
    Exchange.CDS: "CDS",
    Exchange.BCD: "BCD",
    Exchange.MCX: "MCX",
    Exchange.NYSE: "NYSE",
    Exchange.NASDAQ: "NASDAQ",
    Exchange.OPRA: "US_OPTIONS",
    Exchange.SIM: "SIM",
}

# Regular hours as TradingView's session strings (exchange-local HHMM-HHMM).
REGULAR_HOURS: dict[Exchange, str] = {
    Exchange.NSE: "0915-1530",
    Exchange.NFO: "0915-1530",
    Exchange.BSE: "0915-1530",
    Exchange.BFO: "0915-1530",
    Exchange.CDS: "0900-1700",
    Exchange.BCD: "0900-1700",
    # One string per symbol: the winter close.  The bars themselves follow each day's
    # session (23:30 during US daylight-saving time, evening-only holidays).
    Exchange.MCX: "0900-2355",
    Exchange.NYSE: "0930-1600",
    Exchange.NASDAQ: "0930-1600",
    Exchange.OPRA: "0930-1600",
    # Always open: TradingView's session string for round-the-clock markets.
    Exchange.SIM: "24x7",
}


def calendar_for(exchange: Exchange) -> ExchangeCalendar:
    return get_calendar(CALENDAR_CODE[exchange])


def session_bounds(exchange: Exchange, first_ts: int, last_ts: int) -> SessionBounds:
    """Sessions covering the epoch-second span ``[first_ts, last_ts]``.

    One local day of margin on each side: a UTC instant can fall on the neighbouring local
    date (New York evenings are the next UTC day).
    """
    calendar = calendar_for(exchange)
    first = calendar.local_date(dt.datetime.fromtimestamp(first_ts, dt.UTC))
    last = calendar.local_date(dt.datetime.fromtimestamp(last_ts, dt.UTC))
    sessions = calendar.sessions(first - dt.timedelta(days=1), last + dt.timedelta(days=1))
    opens = np.array([int(s.open_utc.timestamp()) for s in sessions], dtype=np.int64)
    closes = np.array([int(s.close_utc.timestamp()) for s in sessions], dtype=np.int64)
    return SessionBounds(opens, closes)
