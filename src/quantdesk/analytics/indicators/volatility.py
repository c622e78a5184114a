"""Volatility: Bollinger Bands, true range, ATR and normalised ATR, reproducing TA-Lib 0.8.

Why hand-written: see ``moving_averages``; TA-Lib is test-only.  ATR's Wilder recursion and
the running sums behind the Bollinger standard deviation run in numba, in TA-Lib's
arithmetic order (fused multiply-adds included), so results are bit-identical on x86-64
with FMA.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from quantdesk.analytics._jit import jit
from quantdesk.analytics.indicators._averages import ma_lookback, moving_average_from
from quantdesk.analytics.indicators._common import (
    FloatArray,
    as_aligned,
    as_series,
    check_matype,
    check_period,
    check_real,
    output_like,
    valid_start,
)
from quantdesk.analytics.indicators._fused import fma


@jit
def _true_range(high: float, low: float, previous_close: float) -> float:
    # Wilder's true range: the bar's range widened to include the previous close.  The
    # comparison order is TA-Lib's (ta_TRANGE.c).
    greatest = high - low
    up = abs(previous_close - high)
    if up > greatest:
        greatest = up
    down = abs(previous_close - low)
    if down > greatest:
        greatest = down
    return greatest


@jit
def _trange_into(high: FloatArray, low: FloatArray, close: FloatArray, out: FloatArray) -> None:
    n = close.shape[0]
    if n <= 1:
        out[:] = np.nan
        return
    out[0] = np.nan
    for i in range(1, n):
        out[i] = _true_range(high[i], low[i], close[i - 1])


@jit
def _percent_of(atr: float, close: float) -> float:
    # ATR as a percentage of the close; a zero close has no meaningful ratio (0, as TA-Lib),
    # and an ATR that is NaN stays NaN.
    if close != 0.0 or np.isnan(atr):
        return (atr / close) * 100.0
    return 0.0


@jit
def _atr_into(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    period: int,
    normalise: bool,
    out: FloatArray,
) -> None:
    """Wilder's ATR into ``out``; with ``normalise``, NATR (ATR as a percentage of the close)
    in the same pass."""
    n = close.shape[0]
    # Period 1 runs the same recursion (weights 1 and 0): on clean data that is the true
    # range itself, but a NaN then stays in the average for good, as in TA-Lib, where TRANGE
    # would recover on the next bar.  TA-Lib returns NATR(1) as ATR(1), not normalised.
    normalise = normalise and period > 1
    if n <= period:
        out[:] = np.nan
        return
    out[:period] = np.nan
    # Seed: plain mean of the first ``period`` true ranges (bars 1..period), then Wilder's
    # smoothing atr = (atr*(period-1) + tr) / period.
    total = 0.0
    for i in range(1, period + 1):
        total += _true_range(high[i], low[i], close[i - 1])
    atr = total / period
    out[period] = _percent_of(atr, close[period]) if normalise else atr
    # TA-Lib 0.8 writes the step as alpha*tr + beta*atr with beta = (period-1)/period and
    # alpha = 1 - beta (so the two weights sum to exactly 1), fused into one rounding.
    beta = (period - 1) / period
    alpha = 1.0 - beta
    # The loops run over views that start at 0, so the index is provably non-negative and
    # numba emits no negative-index wrap-around for each access: a quarter of ATR's time
    # on 1,000,000 bars (docs/benchmarks.md, issue 19).
    highs = high[period + 1 :]
    lows = low[period + 1 :]
    previous_closes = close[period : n - 1]
    tail = out[period + 1 :]

    # A closure, so numba inlines it.
    def step(atr: float, i: int) -> float:
        return fma(beta, atr, alpha * _true_range(highs[i], lows[i], previous_closes[i]))

    if not normalise:
        for i in range(tail.shape[0]):
            atr = step(atr, i)
            tail[i] = atr
        return
    # Four steps of the recursion, then their four divisions by the close: the recursion
    # runs ahead while the divider (slower than one step) works through the quotients.
    # With one division after each step, NATR(14) on 1,000,000 bars took 1.72 ms instead
    # of 1.53 ms (TA-Lib: 1.57 ms).
    closes = close[period + 1 :]
    whole = tail.shape[0] - tail.shape[0] % 4
    for i in range(0, whole, 4):
        first = step(atr, i)
        second = step(first, i + 1)
        third = step(second, i + 2)
        atr = step(third, i + 3)
        tail[i] = _percent_of(first, closes[i])
        tail[i + 1] = _percent_of(second, closes[i + 1])
        tail[i + 2] = _percent_of(third, closes[i + 2])
        tail[i + 3] = _percent_of(atr, closes[i + 3])
    for i in range(whole, tail.shape[0]):
        atr = step(atr, i)
        tail[i] = _percent_of(atr, closes[i])


@jit
def _bollinger_into(
    x: FloatArray,
    period: int,
    begin: int,
    own_sma: bool,
    up: float,
    down: float,
    upper: FloatArray,
    middle: FloatArray,
    lower: FloatArray,
) -> None:
    """Bollinger bands from bar ``begin`` on, in one pass.

    With ``own_sma`` the middle band is the simple moving average, kept as TA-Lib's
    running total in this same loop; otherwise ``middle`` already holds the moving average.

    The deviation is the population standard deviation of the last ``period`` values in
    TA-Lib 0.8's cancellation-free form (var.c, issues #118/#243): running sums of the
    deviations from a ``shift`` near the window keep E[d^2] - E[d]^2 at the variance's own
    scale.  The shift is re-anchored at the window mean, with a fresh two-pass sum, when the
    variance falls below 1e-6 of the mean squared deviation, when a departing outlier
    dominates the sums, or every 32 windows; a re-anchored variance under 1e-12 of that
    scale is rounding noise and becomes an exact 0.
    """
    n = x.shape[0]
    upper[:begin] = np.nan
    middle[:begin] = np.nan
    lower[:begin] = np.nan
    if begin >= n:
        return
    lookback = period - 1
    inverse = 1.0 / period
    trailing = begin - lookback
    shift = x[trailing]
    sma_total = 0.0
    total = 0.0
    total_sq = 0.0
    for j in range(trailing, begin):
        sma_total += x[j]
        deviation = x[j] - shift
        total += deviation
        total_sq += deviation * deviation
    until_reseed = 32 * period
    for i in range(begin, n):
        value = x[i]
        deviation = value - shift
        total += deviation
        total_sq += deviation * deviation
        mean = total * inverse
        variance = total_sq * inverse - mean * mean
        if own_sma:
            sma_total += value
            middle[i] = sma_total / period
            sma_total -= x[trailing]
        deviation = x[trailing] - shift
        total -= deviation
        departing_sq = deviation * deviation
        total_sq -= departing_sq
        trailing += 1
        until_reseed -= 1
        if (
            variance < 1e-6 * (total_sq * inverse)
            or departing_sq > 1e6 * total_sq
            or until_reseed <= 0
        ):
            until_reseed = 32 * period
            window_start = i - lookback
            level = 0.0
            for j in range(window_start, i + 1):
                level += x[j]
            shift = level * inverse
            total = 0.0
            total_sq = 0.0
            for j in range(window_start, i + 1):
                deviation = x[j] - shift
                total += deviation
                total_sq += deviation * deviation
            mean = total * inverse
            variance = total_sq * inverse - mean * mean
            if variance < 1e-12 * (total_sq * inverse):
                variance = 0.0
            deviation = x[window_start] - shift
            total -= deviation
            total_sq -= deviation * deviation
        spread = math.sqrt(variance)
        centre = middle[i]
        # TA-Lib's rounding: one shared product when both multipliers are equal; otherwise
        # the upper band is a fused multiply-add and the lower band is not.
        if up == down:
            width = spread * up
            upper[i] = centre + width
            lower[i] = centre - width
        else:
            upper[i] = fma(spread, up, centre)
            lower[i] = centre - spread * down


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def bbands(
    close: npt.ArrayLike,
    timeperiod: int = 20,
    nbdevup: float = 2.0,
    nbdevdn: float = 2.0,
    matype: int = 0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger Bands ``(upper, middle, lower)``.

    ``middle = MA(close, timeperiod, matype)``; the bands add/subtract ``nbdevup``/``nbdevdn``
    population standard deviations of the last ``timeperiod`` closes (always around their
    simple mean, as TA-Lib does whatever ``matype`` is).  Warm-up is the moving average's.
    """
    x = as_series(close, "close")
    period = check_period(timeperiod, "timeperiod", 2)
    up = check_real(nbdevup, "nbdevup")
    down = check_real(nbdevdn, "nbdevdn")
    kind = check_matype(matype)
    start = valid_start(x)
    n = len(x)
    # TA-Lib starts the bands where the middle band starts, or at the first full window if
    # that comes later.
    begin = min(start + max(ma_lookback(period, kind), period - 1), n)
    own_sma = kind == 0
    middle = np.empty(n) if own_sma else moving_average_from(x, start, period, kind)
    upper = np.empty(n)
    lower = np.empty(n)
    _bollinger_into(
        x[start:],
        period,
        begin - start,
        own_sma,
        up,
        down,
        upper[start:],
        middle[start:],
        lower[start:],
    )
    for band in (upper, middle, lower):
        band[:start] = np.nan
    return upper, middle, lower


def trange(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> FloatArray:
    """True range ``max(high, prev close) - min(low, prev close)``.  Warm-up 1."""
    h, lo, c = as_aligned(high=high, low=low, close=close)
    start = valid_start(h, lo, c)
    out = output_like(len(c), start)
    _trange_into(h[start:], lo[start:], c[start:], out[start:])
    return out


def atr(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, timeperiod: int = 14
) -> FloatArray:
    """Wilder's Average True Range: mean of the first ``timeperiod`` true ranges, then
    ``atr = (atr*(timeperiod-1) + tr) / timeperiod``.  Warm-up ``timeperiod``."""
    h, lo, c = as_aligned(high=high, low=low, close=close)
    period = check_period(timeperiod, "timeperiod", 1)
    start = valid_start(h, lo, c)
    out = output_like(len(c), start)
    _atr_into(h[start:], lo[start:], c[start:], period, False, out[start:])
    return out


def natr(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, timeperiod: int = 14
) -> FloatArray:
    """Normalised ATR, ``100 * ATR / close``.  Warm-up ``timeperiod``."""
    h, lo, c = as_aligned(high=high, low=low, close=close)
    period = check_period(timeperiod, "timeperiod", 1)
    start = valid_start(h, lo, c)
    out = output_like(len(c), start)
    _atr_into(h[start:], lo[start:], c[start:], period, True, out[start:])
    return out
