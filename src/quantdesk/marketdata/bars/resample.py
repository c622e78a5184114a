"""Session-aware resampling of OHLCV bars with NumPy.  Pure: arrays in, arrays out.

Intraday buckets are anchored to each session's open, not to the clock: NSE opens at
09:15 IST, so its 5-minute bars start 09:15, 09:20, … and its hourly bars 09:15, 10:15, …,
15:15 (a 15-minute partial bar, since the session ends at 15:30) — the convention of
exchanges' own candles and of TradingView.  A special session such as NSE's Muhurat evening
session anchors to its own open.  Buckets only ever hold bars that exist: no bar is invented
for a closed period (a holiday, the night), and source bars outside every session are left
out.  Weekly bars group daily bars by the exchange-local week (Monday to Sunday of the
trading date, which is what a daily bar's ``ts`` encodes) and are stamped with the week's
first trading day present.

Why by hand rather than ``pandas.resample``: pandas bins on a clock grid (``origin``/``offset``
give one anchor for the whole series, not one per session) and materialises every empty bin
across nights and holidays; doing it per session would mean a Python loop over days.  Here
the bucketing is a ``searchsorted`` plus ``reduceat``, linear in the number of bars.

``Buckets`` keeps *indexes* of the source bars that give each bucket its open, high, low and
close, so callers holding exact decimal strings can pick them without any float round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantdesk.marketdata.domain import BarArrays, FloatArray, IntArray, Timeframe

_DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class SessionBounds:
    """Trading sessions as UTC epoch seconds, sorted and non-overlapping: ``[open, close)``."""

    opens: IntArray
    closes: IntArray

    def __post_init__(self) -> None:
        if self.opens.shape != self.closes.shape:
            raise ValueError("opens and closes must have the same length")
        if np.any(self.closes <= self.opens) or np.any(self.opens[1:] < self.closes[:-1]):
            raise ValueError("sessions must be sorted, non-empty and non-overlapping")

    @classmethod
    def of(cls, pairs: list[tuple[int, int]]) -> SessionBounds:
        array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return cls(np.ascontiguousarray(array[:, 0]), np.ascontiguousarray(array[:, 1]))


@dataclass(frozen=True, slots=True)
class Buckets:
    """How source bars group into resampled bars; every index points into the source arrays."""

    ts: IntArray  # bucket open time, epoch seconds
    first: IntArray  # source bar giving the open
    last: IntArray  # source bar giving the close (and the closing open interest)
    high: IntArray  # source bar holding the bucket's highest high (the earliest, on ties)
    low: IntArray  # source bar holding the lowest low (the earliest, on ties)
    members: IntArray  # source bars that belong to some bucket, in order
    starts: IntArray  # offsets into ``members`` where each bucket begins (for ``reduceat``)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def sum(self, values: FloatArray) -> FloatArray:
        """Per-bucket sums of ``values`` (volume)."""
        if len(self) == 0:
            return np.empty(0, dtype=np.float64)
        return np.add.reduceat(values[self.members], self.starts)


def _empty() -> Buckets:
    none = np.empty(0, dtype=np.int64)
    return Buckets(none, none, none, none, none, none, none)


def _group(
    keys: IntArray, members: IntArray, high: FloatArray, low: FloatArray, stamps: IntArray
) -> Buckets:
    """Group consecutive equal ``keys`` (one per member) into buckets."""
    if members.shape[0] == 0:
        return _empty()
    change = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate((np.zeros(1, dtype=np.int64), change))
    ends = np.concatenate((change, np.array([members.shape[0]], dtype=np.int64)))
    counts = ends - starts
    group_of = np.repeat(np.arange(starts.shape[0]), counts)
    member_high = high[members]
    member_low = low[members]
    high_index = _first_where(member_high == np.maximum.reduceat(member_high, starts)[group_of])
    low_index = _first_where(member_low == np.minimum.reduceat(member_low, starts)[group_of])
    return Buckets(
        ts=stamps[starts],
        first=members[starts],
        last=members[ends - 1],
        high=members[_pick_first_per_group(high_index, group_of, starts.shape[0])],
        low=members[_pick_first_per_group(low_index, group_of, starts.shape[0])],
        members=members,
        starts=starts,
    )


def _first_where(mask: np.ndarray) -> IntArray:
    return np.flatnonzero(mask).astype(np.int64)


def _pick_first_per_group(candidates: IntArray, group_of: IntArray, groups: int) -> IntArray:
    # ``candidates`` ascending, at least one per group: the first of each group is where the
    # group number first appears.
    positions = np.searchsorted(group_of[candidates], np.arange(groups), side="left")
    return candidates[positions]


def intraday_buckets(
    ts: IntArray, high: FloatArray, low: FloatArray, width_s: int, sessions: SessionBounds
) -> Buckets:
    """Buckets of ``width_s`` seconds anchored at each session's open; ``ts`` ascending."""
    if width_s <= 0:
        raise ValueError("width_s must be positive")
    if ts.shape[0] == 0 or sessions.opens.shape[0] == 0:
        return _empty()
    session = np.searchsorted(sessions.opens, ts, side="right") - 1
    clipped = np.maximum(session, 0)
    inside = (session >= 0) & (ts < sessions.closes[clipped])
    members = np.flatnonzero(inside).astype(np.int64)
    anchor = sessions.opens[clipped[members]]
    stamps = anchor + (ts[members] - anchor) // width_s * width_s
    return _group(stamps, members, high, low, stamps)


def weekly_buckets(ts: IntArray, high: FloatArray, low: FloatArray) -> Buckets:
    """Daily bars (``ts`` = 00:00 UTC of the trading date) grouped by Monday-to-Sunday week."""
    if ts.shape[0] == 0:
        return _empty()
    day = ts // _DAY_S
    # 1970-01-01 was a Thursday, so (day + 3) % 7 is the weekday with Monday = 0.
    monday = day - (day + 3) % 7
    members = np.arange(ts.shape[0], dtype=np.int64)
    return _group(monday, members, high, low, ts)


def buckets_for(
    timeframe: Timeframe,
    ts: IntArray,
    high: FloatArray,
    low: FloatArray,
    sessions: SessionBounds | None,
) -> Buckets:
    """Buckets turning the stored base series (``timeframe.stored_base``) into ``timeframe``."""
    if timeframe in (Timeframe.M1, Timeframe.D1):
        members = np.arange(ts.shape[0], dtype=np.int64)
        return Buckets(ts, members, members, members, members, members, members)
    if timeframe is Timeframe.W1:
        return weekly_buckets(ts, high, low)
    if sessions is None:
        raise ValueError(f"resampling to {timeframe.value} needs the exchange's sessions")
    return intraday_buckets(ts, high, low, int(timeframe.duration.total_seconds()), sessions)


def apply(buckets: Buckets, bars: BarArrays) -> BarArrays:
    """The resampled series as floats (for analytics; the API picks exact strings instead)."""
    oi = bars.oi[buckets.last] if bars.oi.shape[0] else np.empty(0, dtype=np.float64)
    return BarArrays(
        ts=buckets.ts,
        open=bars.open[buckets.first],
        high=bars.high[buckets.high],
        low=bars.low[buckets.low],
        close=bars.close[buckets.last],
        volume=buckets.sum(bars.volume),
        oi=oi,
    )


def resample(
    bars: BarArrays, timeframe: Timeframe, sessions: SessionBounds | None = None
) -> BarArrays:
    """Resample a stored 1m (intraday targets) or 1d (``1w``) series to ``timeframe``."""
    if bars.ts.shape[0] > 1 and np.any(np.diff(bars.ts) <= 0):
        raise ValueError("bar timestamps must be strictly increasing")
    return apply(buckets_for(timeframe, bars.ts, bars.high, bars.low, sessions), bars)
