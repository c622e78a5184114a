"""Rolling highest-high / lowest-low over a fixed window, in O(1) per bar, and the two
oscillators that place the close inside that range (fast %K and Williams %R).

The scan is van Herk / Gil-Werman's, which TA-Lib 0.8 also uses for WILLR: cut the series
into blocks of ``period`` bars; a window then covers the tail of one block and the head of
the next, so its extreme is the larger of a suffix extreme (computed backwards over the
older block) and a prefix extreme (running forwards in the newer one).  Every bar costs a
fixed few comparisons whatever the period, where rescanning on expiry degrades to
O(period) per bar in a trend.  Extremes are exact, so the algorithm never changes a value.

A NaN inside the data is met the way TA-Lib's C code meets it, by comparisons that are
false: a running extreme is replaced only when ``value > extreme`` (``<`` for lows), so a
NaN that *starts* a running extreme sticks to it and one met later is skipped.  Windows
without a NaN are exact either way; windows with one answer what TA-Lib answers.

TA-Lib's STOCH (unlike its WILLR) keeps the classic rescanning scan, whose NaN behaviour
differs (a rescan that starts on a NaN answers NaN, otherwise a NaN is skipped):
``rescan_extremes_into`` reproduces it, and the stochastic uses it when its input has a gap.
"""

from __future__ import annotations

import numpy as np

from quantdesk.analytics._jit import jit
from quantdesk.analytics.indicators._common import FloatArray

EXTREMES = 0  # write the highest high and lowest low
FAST_K = 1  # write the stochastic %K of the close
WILLIAMS_R = 2  # write Williams %R of the close
CHANNEL = 3  # write the highest high, the lowest low and their midpoint (Donchian)


@jit
def _is_flat(top: float, bottom: float) -> bool:
    # A range within 1e-14 of its own price level is machine-flat (TA-Lib 0.8's scaled
    # guard, issues #107/#253): dividing its residue would give [0, 100] noise, e.g. for a
    # stochastic of an RSI that has stopped moving.
    return abs(top - bottom) <= 1e-14 * (abs(top) + abs(bottom))


@jit
def _fast_k_value(close: float, top: float, bottom: float) -> float:
    if _is_flat(top, bottom):
        return 0.0
    return ((close - bottom) / (top - bottom)) * 100.0


@jit
def _williams_r_value(close: float, top: float, bottom: float) -> float:
    if _is_flat(top, bottom):
        return 0.0
    # Clamped to [-100, 0]: reachable only when a close lies outside its own bar.
    return min(max(((top - close) / (top - bottom)) * -100.0, -100.0), 0.0)


@jit
def range_scan_into(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    period: int,
    mode: int,
    out_a: FloatArray,
    out_b: FloatArray,
    out_c: FloatArray,
) -> None:
    """Scan ``period``-bar windows; ``mode`` says what to write for each (see constants).

    ``out_b`` is only written in the ``EXTREMES`` and ``CHANNEL`` modes, ``out_c`` only in
    ``CHANNEL``.  Bars before ``period-1`` get NaN.  Call it through the ``scan_*_into``
    functions below, which fix the mode.
    """
    n = high.shape[0]
    lookback = period - 1

    # A closure, so numba inlines it: passing the arrays to a separate function on every
    # bar would cost a reference-count round trip per call.
    def emit(bar: int, top: float, bottom: float) -> None:
        if mode == FAST_K:
            out_a[bar] = _fast_k_value(close[bar], top, bottom)
        elif mode == WILLIAMS_R:
            out_a[bar] = _williams_r_value(close[bar], top, bottom)
        else:
            out_a[bar] = top
            out_b[bar] = bottom
            if mode == CHANNEL:
                out_c[bar] = (top + bottom) * 0.5

    warm_up = min(lookback, n)
    out_a[:warm_up] = np.nan
    if mode in (EXTREMES, CHANNEL):
        out_b[:warm_up] = np.nan
    if mode == CHANNEL:
        out_c[:warm_up] = np.nan
    suffix_high = np.empty(period)
    suffix_low = np.empty(period)
    # Every comparison below is written ``new > kept`` (``<``), never max()/min(): with a
    # NaN on either side it keeps what it had, which is TA-Lib 0.8's behaviour on gaps.
    for block in range(0, n - lookback, period):
        # Suffix extremes of the block [block, block+period-1], which is complete here.
        top = high[block + lookback]
        bottom = low[block + lookback]
        suffix_high[lookback] = top
        suffix_low[lookback] = bottom
        for i in range(block + lookback - 1, block - 1, -1):
            top = high[i] if high[i] > top else top
            bottom = low[i] if low[i] < bottom else bottom
            suffix_high[i - block] = top
            suffix_low[i - block] = bottom
        emit(block + lookback, top, bottom)
        # Windows starting inside this block end inside the next one; the head extremes
        # start from that block's first bar.
        head = block + period
        head_high = high[head] if head < n else 0.0
        head_low = low[head] if head < n else 0.0
        for offset in range(1, period):
            end = block + lookback + offset
            if end >= n:
                break
            head_high = high[end] if high[end] > head_high else head_high
            head_low = low[end] if low[end] < head_low else head_low
            older_high = suffix_high[offset]
            older_low = suffix_low[offset]
            emit(
                end,
                head_high if head_high > older_high else older_high,
                head_low if head_low < older_low else older_low,
            )


# One entry point per mode.  Each passes its mode as a constant, and LLVM inlines the scan
# into it (its only call in that module) and folds the mode tests away: with the mode a
# run-time value they stayed in the per-bar loop, and WILLR(14) on 1,000,000 bars took
# 3.4 ms instead of 2.9 ms (TA-Lib: 3.0 ms).


@jit
def scan_extremes_into(
    high: FloatArray, low: FloatArray, period: int, top: FloatArray, bottom: FloatArray
) -> None:
    """Rolling highest ``high`` and lowest ``low`` over ``period`` bars."""
    range_scan_into(high, low, high, period, EXTREMES, top, bottom, bottom)


@jit
def scan_channel_into(
    high: FloatArray,
    low: FloatArray,
    period: int,
    upper: FloatArray,
    lower: FloatArray,
    middle: FloatArray,
) -> None:
    """Donchian's three lines: rolling highest high, lowest low and their midpoint."""
    range_scan_into(high, low, high, period, CHANNEL, upper, lower, middle)


@jit
def scan_fast_k_into(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int, out: FloatArray
) -> None:
    """Stochastic fast %K of ``close`` in its rolling ``period``-bar range."""
    range_scan_into(high, low, close, period, FAST_K, out, out, out)


@jit
def scan_williams_r_into(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int, out: FloatArray
) -> None:
    """Williams %R of ``close`` in its rolling ``period``-bar range."""
    range_scan_into(high, low, close, period, WILLIAMS_R, out, out, out)


@jit
def rescan_extremes_into(
    high: FloatArray, low: FloatArray, period: int, top: FloatArray, bottom: FloatArray
) -> None:
    """Rolling highest high and lowest low exactly as TA-Lib's STOCH finds them.

    The extreme and its bar are kept; when that bar leaves the window the window is rescanned
    (``>``/``<``, the earliest extreme wins), otherwise a new bar replaces the extreme when
    ``>=``/``<=`` it (the latest wins).  On clean data that is the exact extreme, as from
    ``range_scan_into``; on data with a gap it is TA-Lib's answer, which the block scan
    cannot give.  O(period) per bar in a trend, as in TA-Lib, so only used on gappy data.
    """
    n = high.shape[0]
    lookback = period - 1
    top[: min(lookback, n)] = np.nan
    bottom[: min(lookback, n)] = np.nan
    highest_bar = -1
    lowest_bar = -1
    highest = 0.0
    lowest = 0.0
    for today in range(lookback, n):
        trailing = today - lookback
        if lowest_bar < trailing:
            lowest_bar = trailing
            lowest = low[trailing]
            for i in range(trailing + 1, today + 1):
                if low[i] < lowest:
                    lowest_bar = i
                    lowest = low[i]
        elif low[today] <= lowest:
            lowest_bar = today
            lowest = low[today]
        if highest_bar < trailing:
            highest_bar = trailing
            highest = high[trailing]
            for i in range(trailing + 1, today + 1):
                if high[i] > highest:
                    highest_bar = i
                    highest = high[i]
        elif high[today] >= highest:
            highest_bar = today
            highest = high[today]
        top[today] = highest
        bottom[today] = lowest


@jit
def fast_k_into(
    top: FloatArray, bottom: FloatArray, close: FloatArray, period: int, out: FloatArray
) -> None:
    """Stochastic %K of ``close`` in given rolling extremes (``range_scan_into``'s formula)."""
    n = close.shape[0]
    out[: min(period - 1, n)] = np.nan
    for bar in range(period - 1, n):
        out[bar] = _fast_k_value(close[bar], top[bar], bottom[bar])
