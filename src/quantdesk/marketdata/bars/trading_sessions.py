"""Which calendar an instrument trades on, and its sessions as arrays for resampling.

NFO (NSE's F&O segment) keeps the cash market's hours; US listed options (OPRA) follow the
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
