"""Live bars from ticks (``marketdata.bars.live``): hand-worked bars on an NSE-like session
(09:15-15:30 IST = 03:45-10:00 UTC), and the real NSE calendar's boundaries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from quantdesk.marketdata.bars.live import BarBuilder, LiveBar, SessionWindow
from quantdesk.marketdata.domain import Exchange
from quantdesk.signals.live import session_finder

DAY0 = 1_709_596_800  # 2024-03-05T00:00Z, a Tuesday
OPEN = DAY0 + 13_500  # 03:45Z = 09:15 IST
CLOSE = DAY0 + 36_000  # 10:00Z = 15:30 IST
KEY = "NSE:INFY"
D = Decimal


def one_session(ts: int) -> SessionWindow | None:
    """Every day one session 03:45-10:00 UTC, stamped at 00:00 UTC of the day."""
    day = ts - ts % 86_400
    window = SessionWindow(day + 13_500, day + 36_000, day)
    return window if window.open <= ts < window.close else None


def bar(ts: int, end: int, o: str, h: str, lo: str, c: str, v: str, complete: bool) -> LiveBar:
    return LiveBar(KEY, ts, end, D(o), D(h), D(lo), D(c), D(v), complete)


def test_five_minute_bars_from_ticks() -> None:
    builder = BarBuilder(300, one_session)
    # Before the open: ignored.
    assert builder.on_tick(KEY, OPEN - 60, D("1500.00"), D(0)) == []
    # The first tick, 09:16:10: its bar (09:15-09:20) began before we watched: partial.
    assert builder.on_tick(KEY, OPEN + 70, D("1501.00"), D(1000)) == []
    # 09:20:00 opens the next bar and closes the partial one.
    closed = builder.on_tick(KEY, OPEN + 300, D("1502.50"), D(1200))
    assert closed == [bar(OPEN, OPEN + 300, "1501.00", "1501.00", "1501.00", "1501.00", "0",
                          False)]  # fmt: skip
    for offset, price, volume in ((330, "1504.00", 1500), (400, "1499.95", 1510),
                                  (599, "1500.05", 1800)):  # fmt: skip
        assert builder.on_tick(KEY, OPEN + offset, D(price), D(volume)) == []
    # A tick of the closed 09:15 bar, late: ignored.
    assert builder.on_tick(KEY, OPEN + 200, D("1400.00"), D(1800)) == []
    # Nothing ticks at 09:25-09:30: the clock closes the 09:20 bar at 09:25.
    assert builder.close_due(OPEN + 599) == []
    # Volume over the bar: day volume 1800 at its last tick less 1000 before it began.
    assert builder.close_due(OPEN + 600) == [
        bar(OPEN + 300, OPEN + 600, "1502.50", "1504.00", "1499.95", "1500.05", "800", True)
    ]
    assert builder.forming(KEY) is None


def test_hourly_bars_are_cut_at_the_close_and_daily_bars_are_sessions() -> None:
    hourly, daily = BarBuilder(3600, one_session), BarBuilder(None, one_session)
    ticks = [(OPEN - 86_400 + 60, "99"),  # the previous day: watching starts, partial
             (OPEN + 10, "100"), (OPEN + 6 * 3600 + 5, "103"),  # 15:15:05 IST, the last hour
             (CLOSE - 1, "102"), (CLOSE + 1, "500")]  # fmt: skip
    closed = []
    for ts, price in ticks:
        closed += hourly.on_tick(KEY, ts, D(price)) + daily.on_tick(KEY, ts, D(price))
    closed += hourly.close_due(CLOSE) + daily.close_due(CLOSE)
    last_hour = OPEN + 6 * 3600
    assert [(b.ts, b.end, b.close, b.complete) for b in closed] == [
        (OPEN - 86_400, OPEN - 86_400 + 3600, D(99), False),
        (DAY0 - 86_400, CLOSE - 86_400, D(99), False),
        (OPEN, OPEN + 3600, D(100), True),
        (last_hour, CLOSE, D(102), True),  # 15:15-15:30: 15 minutes
        (DAY0, CLOSE, D(102), True),  # the session, stamped 00:00 UTC of its date
    ]
    assert (closed[-1].open, closed[-1].high, closed[-1].low) == (D(100), D(103), D(100))


def test_on_the_nse_calendar() -> None:
    # 2024-03-08 was Mahashivratri, an NSE holiday; 03-07 an ordinary Thursday.
    builder = BarBuilder(900, session_finder(Exchange.NSE))
    thursday = int(dt.datetime(2024, 3, 7, 3, 45, tzinfo=dt.UTC).timestamp())
    holiday = int(dt.datetime(2024, 3, 8, 5, 0, tzinfo=dt.UTC).timestamp())
    first = builder.bucket(thursday)
    assert first is not None
    assert first[:2] == (thursday, thursday + 900)  # 09:15-09:30 IST
    assert builder.bucket(thursday + 16 * 60) == (thursday + 900, thursday + 1800, first[2])
    assert first[2].close == thursday + 22_500  # 15:30 IST
    assert builder.bucket(holiday) is None
    assert builder.bucket(thursday - 1) is None  # 09:14:59 IST


def test_a_forgotten_instrument_starts_again_with_a_partial_bar() -> None:
    builder = BarBuilder(300, one_session)
    builder.on_tick(KEY, OPEN + 70, D("1501.00"), D(1000))
    builder.on_tick(KEY, OPEN + 300, D("1502.50"), D(1200))  # the 09:20 bar, watched whole
    builder.forget(KEY)
    # Not closed by the clock: after forget its later ticks were not seen.
    assert builder.forming(KEY) is None
    assert builder.close_due(OPEN + 600) == []
    # Watched again from 09:31: that bar is partial, as a first bar is.
    assert builder.on_tick(KEY, OPEN + 960, D("1510.00"), D(2500)) == []
    assert builder.on_tick(KEY, OPEN + 1200, D("1511.00"), D(2600)) == [
        bar(OPEN + 900, OPEN + 1200, "1510.00", "1510.00", "1510.00", "1510.00", "0", False)
    ]
