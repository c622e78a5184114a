"""Indicators TA-Lib does not have: session VWAP, SuperTrend, Keltner and Donchian channels
and floor-trader pivot points.  Definitions (with references) are in ``docs/indicators.md``;
each is built from this package's TA-Lib-identical pieces where one exists (EMA, Wilder ATR,
rolling extremes), so its warm-up follows from theirs.

Why hand-written: these are a few lines each on top of the TA-Lib-compatible building
blocks, and the libraries that have them (pandas-ta, ta) use other warm-up and seeding
conventions, which would make them disagree with our own ``ema``/``atr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from quantdesk.analytics._jit import jit
from quantdesk.analytics.indicators._common import (
    FloatArray,
    as_aligned,
    check_period,
    check_real,
    output_like,
    valid_start,
)
from quantdesk.analytics.indicators._windows import scan_channel_into, scan_extremes_into
from quantdesk.analytics.indicators.moving_averages import ema
from quantdesk.analytics.indicators.volatility import atr

IntArray = npt.NDArray[np.int64]
PivotMethod = Literal["classic", "fibonacci", "camarilla", "woodie"]


@dataclass(frozen=True, slots=True)
class PivotLevels:
    """Pivot point ``p`` with resistances ``r1..r3`` and supports ``s1..s3``, one value per
    bar, each computed from the previous bar's high, low and close."""

    p: FloatArray
    r1: FloatArray
    r2: FloatArray
    r3: FloatArray
    s1: FloatArray
    s2: FloatArray
    s3: FloatArray

    def as_dict(self) -> dict[str, FloatArray]:
        """The levels keyed the way charting tools label them: P, R1..R3, S1..S3."""
        return {
            "P": self.p,
            "R1": self.r1,
            "R2": self.r2,
            "R3": self.r3,
            "S1": self.s1,
            "S2": self.s2,
            "S3": self.s3,
        }


def _as_session_ids(values: npt.ArrayLike, length: int) -> IntArray:
    ids = np.asarray(values)
    if ids.ndim != 1:
        raise ValueError(f"session_ids must be one-dimensional, got shape {ids.shape}")
    if ids.dtype.kind not in "iu":
        raise ValueError(f"session_ids must be integers, got dtype {ids.dtype}")
    if len(ids) != length:
        raise ValueError(f"session_ids has length {len(ids)}, the price series {length}")
    return np.ascontiguousarray(ids, dtype=np.int64)


@jit
def _vwap_into(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    sessions: IntArray,
    out: FloatArray,
) -> None:
    traded_value = 0.0
    traded_volume = 0.0
    for i in range(close.shape[0]):
        if i == 0 or sessions[i] != sessions[i - 1]:
            # A new session anchors a new average.
            traded_value = 0.0
            traded_volume = 0.0
        typical = (high[i] + low[i] + close[i]) / 3.0
        contribution = typical * volume[i]
        if np.isnan(contribution):
            # A bar with a missing price or volume contributes nothing and has no value.
            out[i] = np.nan
            continue
        traded_value += contribution
        traded_volume += volume[i]
        out[i] = traded_value / traded_volume if traded_volume > 0.0 else np.nan


@jit
def _supertrend_into(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    true_range_average: FloatArray,
    multiplier: float,
    line: FloatArray,
    direction: FloatArray,
) -> None:
    n = close.shape[0]
    upper = np.nan
    lower = np.nan
    started = False
    for i in range(n):
        band = true_range_average[i]
        if np.isnan(band):
            line[i] = np.nan
            direction[i] = np.nan
            continue
        middle = (high[i] + low[i]) / 2.0
        basic_upper = middle + multiplier * band
        basic_lower = middle - multiplier * band
        if not started:
            # TradingView starts in a downtrend on the first bar with an ATR.
            started = True
            upper = basic_upper
            lower = basic_lower
            line[i] = upper
            direction[i] = -1.0
            continue
        was_on_upper = line[i - 1] == upper
        # Each band only ratchets towards price (the lower one up, the upper one down)
        # unless the previous close broke through it.
        if basic_lower > lower or close[i - 1] < lower:
            lower = basic_lower
        if basic_upper < upper or close[i - 1] > upper:
            upper = basic_upper
        # Riding the upper band (downtrend), a close above it turns the trend up; riding
        # the lower band (uptrend), only a close below it turns the trend down.
        up = close[i] > upper if was_on_upper else close[i] >= lower
        direction[i] = 1.0 if up else -1.0
        line[i] = lower if up else upper


def _previous_bar(series: FloatArray) -> FloatArray:
    shifted = np.empty_like(series)
    shifted[:1] = np.nan
    shifted[1:] = series[:-1]
    return shifted


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def vwap(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    session_ids: npt.ArrayLike,
) -> FloatArray:
    """Session-anchored volume-weighted average price.

    ``VWAP[t] = sum(tp*v) / sum(v)`` over the bars of ``t``'s session up to ``t``, with the
    typical price ``tp = (high+low+close)/3``.  ``session_ids`` labels each bar's session
    (e.g. the trading date as an integer); the sums restart whenever the label changes.
    NaN while the session has traded no volume, and on a bar with a missing input (which
    then adds nothing to the sums).
    """
    h, lo, c, v = as_aligned(high=high, low=low, close=close, volume=volume)
    sessions = _as_session_ids(session_ids, len(c))
    out = np.empty(len(c))
    _vwap_into(h, lo, c, v, sessions, out)
    return out


def supertrend(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    timeperiod: int = 10,
    multiplier: float = 3.0,
) -> tuple[FloatArray, FloatArray]:
    """SuperTrend ``(line, direction)`` as TradingView defines it, on Wilder's ATR.

    Bands ``(high+low)/2 +/- multiplier * ATR(timeperiod)`` ratchet towards price; the line
    follows the lower band in an uptrend (``direction = +1``) and the upper band in a
    downtrend (``-1``); a close through the active band flips it.  Note TradingView's own
    ``direction`` output uses the opposite sign.  Warm-up ``timeperiod`` (the ATR's).
    """
    h, lo, c = as_aligned(high=high, low=low, close=close)
    period = check_period(timeperiod, "timeperiod", 1)
    factor = check_real(multiplier, "multiplier", 0.0)
    average_range = atr(h, lo, c, period)
    line = np.empty(len(c))
    direction = np.empty(len(c))
    _supertrend_into(h, lo, c, average_range, factor, line, direction)
    return line, direction


def keltner(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    timeperiod: int = 20,
    atr_period: int = 10,
    multiplier: float = 2.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Keltner channel ``(upper, middle, lower)``: ``middle = EMA(close, timeperiod)``, bands
    ``middle +/- multiplier * ATR(atr_period)`` (Wilder).  Warm-up
    ``max(timeperiod - 1, atr_period)``."""
    h, lo, c = as_aligned(high=high, low=low, close=close)
    period = check_period(timeperiod, "timeperiod", 1)
    range_period = check_period(atr_period, "atr_period", 1)
    factor = check_real(multiplier, "multiplier", 0.0)
    middle = ema(c, period)
    width = factor * atr(h, lo, c, range_period)
    # NaN in either part makes all three NaN, so the channel starts on one bar.
    middle[np.isnan(width)] = np.nan
    return middle + width, middle, middle - width


def donchian(
    high: npt.ArrayLike, low: npt.ArrayLike, timeperiod: int = 20
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Donchian channel ``(upper, middle, lower)``: highest high and lowest low of the last
    ``timeperiod`` bars (current bar included) and their midpoint.  Warm-up
    ``timeperiod - 1``."""
    h, lo = as_aligned(high=high, low=low)
    period = check_period(timeperiod, "timeperiod", 1)
    # Each band is TA-Lib's MAX / MIN of its own series, so each skips only its own leading
    # NaNs (a gap at the start of ``high`` does not delay the lower band).
    high_start, low_start = valid_start(h), valid_start(lo)
    upper = output_like(len(h), high_start)
    lower = output_like(len(h), low_start)
    if high_start == low_start:
        s = high_start
        middle = output_like(len(h), s)
        scan_channel_into(h[s:], lo[s:], period, upper[s:], lower[s:], middle[s:])
    else:
        scratch = np.empty(len(h))
        s = high_start
        scan_extremes_into(h[s:], h[s:], period, upper[s:], scratch[s:])
        s = low_start
        scan_extremes_into(lo[s:], lo[s:], period, scratch[s:], lower[s:])
        middle = np.add(upper, lower)
        middle *= 0.5
    return upper, middle, lower


def pivot_points(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    method: PivotMethod = "classic",
) -> PivotLevels:
    """Floor-trader pivot levels for each period from the previous period's high, low and
    close (pass one bar per period, e.g. daily bars for daily pivots).  The first bar has
    no previous period and gets NaN.

    ``method`` is ``"classic"``, ``"fibonacci"``, ``"camarilla"`` or ``"woodie"``; the
    formulas are in ``docs/indicators.md``.
    """
    h, lo, c = as_aligned(high=high, low=low, close=close)
    ph, pl, pc = (_previous_bar(series) for series in (h, lo, c))
    span = ph - pl
    if method == "classic":
        p = (ph + pl + pc) / 3.0
        levels = (2.0 * p - pl, p + span, ph + 2.0 * (p - pl))
        supports = (2.0 * p - ph, p - span, pl - 2.0 * (ph - p))
    elif method == "fibonacci":
        p = (ph + pl + pc) / 3.0
        levels = (p + 0.382 * span, p + 0.618 * span, p + span)
        supports = (p - 0.382 * span, p - 0.618 * span, p - span)
    elif method == "camarilla":
        p = (ph + pl + pc) / 3.0
        levels = (pc + span * 1.1 / 12.0, pc + span * 1.1 / 6.0, pc + span * 1.1 / 4.0)
        supports = (pc - span * 1.1 / 12.0, pc - span * 1.1 / 6.0, pc - span * 1.1 / 4.0)
    elif method == "woodie":
        p = (ph + pl + 2.0 * pc) / 4.0
        levels = (2.0 * p - pl, p + span, ph + 2.0 * (p - pl))
        supports = (2.0 * p - ph, p - span, pl - 2.0 * (ph - p))
    else:
        raise ValueError(
            f"method must be 'classic', 'fibonacci', 'camarilla' or 'woodie', got {method!r}"
        )
    return PivotLevels(p, *levels, *supports)
