"""Live bars: ticks in, closed OHLCV bars out, per instrument, on the exchange's sessions.

Pure: no I/O, no clock of its own.  The caller feeds each tick (``on_tick``) and, now and
then, the time (``close_due``); both return the bars that closed.  Bar boundaries are those
of the stored-bar resampler (``resample``): intraday bars are anchored at each session's open
(NSE's 5-minute bars start 09:15, 09:20, ...; the last hourly bar of a session is cut short
at the close), a daily bar is the whole session, stamped as the store stamps daily bars
(00:00 UTC of the local trading date).  A tick outside every session, or older than the bar
forming (late), is ignored.

Volume comes from the tick's cumulative day volume (Kite's ``volume_traded``, the quote's
``volume``): a bar's volume is the growth of that figure over the bar.  A bar is
``complete`` only if the builder was watching the instrument before the bar began (its
first tick came earlier) and knew the volume baseline: the bar an instrument's first tick
falls in is partial (what came before it was missed), and the caller must neither store it
nor signal on it.  Watching is measured on the feed's own clock, the ticks' times, so a
replay of old ticks builds the same bars as the live feed did.

Why by hand: the aggregation is a few comparisons per tick; a streaming library (e.g.
``bytewax`` or pandas' resample in a loop) would bring a runtime, not save code, and would
not know the exchange's sessions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from quantdesk.marketdata.domain import Bar

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class SessionWindow:
    """One session in epoch seconds: ``[open, close)``; ``day`` is 00:00 UTC of its local
    trading date (the stamp of its daily bar)."""

    open: int
    close: int
    day: int


SessionOf = Callable[[int], SessionWindow | None]
"""The session holding an instant (epoch seconds), or None while the market is closed."""


@dataclass(frozen=True, slots=True)
class LiveBar:
    key: str
    ts: int  # bar open, epoch seconds UTC (the stored bar's ``ts``)
    end: int  # when it closes (exclusive)
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    complete: bool

    def as_bar(self) -> Bar:
        return Bar(
            dt.datetime.fromtimestamp(self.ts, dt.UTC),
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
        )


@dataclass(slots=True)
class _Forming:
    ts: int
    end: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    complete: bool

    def closed(self, key: str) -> LiveBar:
        return LiveBar(key, self.ts, self.end, self.open, self.high, self.low, self.close,
                       self.volume, self.complete)  # fmt: skip


@dataclass(slots=True)
class _Baseline:
    session_open: int
    day_volume: Decimal


class BarBuilder:
    """Bars of ``width_s`` seconds (``None``: one bar per session) for any instruments on
    one calendar."""

    def __init__(self, width_s: int | None, session_of: SessionOf) -> None:
        if width_s is not None and width_s <= 0:
            raise ValueError("a bar lasts a positive number of seconds")
        self.width_s = width_s
        self.session_of = session_of
        self._first_tick: dict[str, int] = {}  # key -> when its first tick came
        self._forming: dict[str, _Forming] = {}
        self._baseline: dict[str, _Baseline] = {}
        self._closed_until: dict[str, int] = {}  # key -> end of its last closed bar

    def bucket(self, ts: int) -> tuple[int, int, SessionWindow] | None:
        """``(bar open, bar end, session)`` of the bar holding ``ts``, or None (closed)."""
        session = self.session_of(ts)
        if session is None:
            return None
        if self.width_s is None:
            return session.day, session.close, session
        start = session.open + (ts - session.open) // self.width_s * self.width_s
        return start, min(start + self.width_s, session.close), session

    def forming(self, key: str) -> LiveBar | None:
        bar = self._forming.get(key)
        return None if bar is None else bar.closed(key)

    def on_tick(
        self, key: str, ts: int, price: Decimal, day_volume: Decimal | None = None
    ) -> list[LiveBar]:
        """Take one tick; the bar it closed (a tick in a later bar closes the one forming)."""
        where = self.bucket(ts)
        if where is None or ts < self._closed_until.get(key, ts):
            return []
        start, end, session = where
        watching_since = self._first_tick.setdefault(key, ts)
        closed: list[LiveBar] = []
        bar = self._forming.get(key)
        if bar is not None and start < bar.ts:
            return []  # late: the bar it belonged to is already behind this one
        if bar is not None and start != bar.ts:
            closed.append(self._close(key, bar))
            bar = None
        added, known = self._volume(key, session, day_volume, watching_since)
        if bar is None:
            # Watched from its first instant (the session's open for a daily bar).
            begins = session.open if self.width_s is None else start
            bar = self._forming[key] = _Forming(start, end, price, price, price, price,
                                                Decimal(0), begins > watching_since)  # fmt: skip
        else:
            bar.high = max(bar.high, price)
            bar.low = min(bar.low, price)
            bar.close = price
        bar.volume += added
        bar.complete = bar.complete and known
        return closed

    def forget(self, key: str) -> None:
        """Stop building ``key``'s bars: its forming bar is dropped, not closed (the ticks
        after this are not seen, so it could not be complete), and a later tick starts it
        again as a first, partial bar."""
        for state in (self._first_tick, self._forming, self._baseline, self._closed_until):
            state.pop(key, None)

    def close_due(self, now: int) -> list[LiveBar]:
        """The bars whose end has passed at ``now`` (a quiet instrument's bar closes too)."""
        due = [key for key, bar in self._forming.items() if bar.end <= now]
        return [self._close(key, self._forming[key]) for key in due]

    def _close(self, key: str, bar: _Forming) -> LiveBar:
        del self._forming[key]
        self._closed_until[key] = bar.end
        return bar.closed(key)

    def _volume(
        self, key: str, session: SessionWindow, day_volume: Decimal | None, watching_since: int
    ) -> tuple[Decimal, bool]:
        """The volume this tick adds, and whether it is known (a baseline was there)."""
        if day_volume is None:
            return Decimal(0), True
        baseline = self._baseline.get(key)
        self._baseline[key] = _Baseline(session.open, day_volume)
        if baseline is not None and baseline.session_open == session.open:
            return max(day_volume - baseline.day_volume, Decimal(0)), True
        if session.open > watching_since:
            return day_volume, True  # the session began while we watched: it counts from 0
        return Decimal(0), False  # joined mid-session: the bar's volume so far is unknown


__all__ = ["DAY_S", "BarBuilder", "LiveBar", "SessionOf", "SessionWindow"]
