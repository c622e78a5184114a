"""Historical candles: ``GET /instruments/historical/{instrument_token}/{interval}``.

Query: ``from``/``to`` as ``yyyy-mm-dd hh:mm:ss`` in exchange time (IST), ``continuous=0``,
``oi=1`` for derivatives (a seventh column, open interest).  Answer:
``{"status": "success", "data": {"candles": [["2015-12-28T09:15:00+0530", o, h, l, c, v(, oi)],
...]}}``; a candle's timestamp is its open, a day candle's is 00:00 IST of the session.

Kite caps the span of one request per interval (Kite Connect forum, "Historical API
frequency and limit": minute 60 days, 3/5/10minute 100, 15/30minute 200, 60minute 400,
day 2000), so a range is cut into windows of at most that span, fetched in order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Final

from quantdesk.marketdata.domain import Bar, Instrument, InstrumentType, Timeframe
from quantdesk.marketdata.providers.http_client import MalformedResponseError
from quantdesk.marketdata.providers.kite.auth import IST
from quantdesk.marketdata.providers.parsing import exact_decimal, session_day

# Every interval Kite serves, and the longest span one request may cover.
MAX_SPAN_DAYS: Final = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}
KITE_INTERVALS: Final = {
    Timeframe.M1: "minute",
    Timeframe.M3: "3minute",
    Timeframe.M5: "5minute",
    Timeframe.M10: "10minute",
    Timeframe.M15: "15minute",
    Timeframe.M30: "30minute",
    Timeframe.H1: "60minute",
    Timeframe.D1: "day",
}
_STAMP: Final = "%Y-%m-%d %H:%M:%S"


def windows(
    interval: str, start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """``[start, end]`` cut into consecutive inclusive windows within Kite's span limit.

    Each window ends one second before the next begins (candle stamps are whole seconds).
    """
    span = dt.timedelta(days=MAX_SPAN_DAYS[interval])
    cursor = start
    while cursor <= end:
        upper = min(cursor + span - dt.timedelta(seconds=1), end)
        yield cursor, upper
        cursor = upper + dt.timedelta(seconds=1)


def kite_time(moment: dt.datetime) -> str:
    """A request bound as Kite wants it: IST wall-clock time."""
    return moment.astimezone(IST).strftime(_STAMP)


def wants_oi(instrument: Instrument) -> bool:
    return instrument.type in (InstrumentType.FUTURE, InstrumentType.OPTION)


def _bad(detail: str) -> MalformedResponseError:
    return MalformedResponseError(f"kite: {detail}", provider="kite")


def parse_candles(data: Any, daily: bool) -> list[Bar]:
    """``data.candles`` as bars: UTC open times (a day candle at its session's 00:00 UTC)."""
    candles = data.get("candles") if isinstance(data, dict) else None
    if not isinstance(candles, list):
        raise _bad("historical answer has no candles list")
    bars: list[Bar] = []
    for i, row in enumerate(candles):
        if not isinstance(row, list) or len(row) not in (6, 7) or not isinstance(row[0], str):
            raise _bad(f"candle {i} is not [timestamp, open, high, low, close, volume(, oi)]")
        try:
            stamp = dt.datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            raise _bad(f"candle {i} timestamp {row[0]!r} is not ISO 8601 with an offset") from None
        ts = session_day(stamp.astimezone(IST).date()) if daily else stamp.astimezone(dt.UTC)
        what = f"candle {i}"
        bars.append(
            Bar(
                ts=ts,
                open=exact_decimal(row[1], f"{what} open", _bad),
                high=exact_decimal(row[2], f"{what} high", _bad),
                low=exact_decimal(row[3], f"{what} low", _bad),
                close=exact_decimal(row[4], f"{what} close", _bad),
                volume=exact_decimal(row[5], f"{what} volume", _bad),
                oi=exact_decimal(row[6], f"{what} oi", _bad) if len(row) == 7 else None,
            )
        )
    return bars
