"""Trend: Wilder's directional movement (+DI, -DI, ADX) and Parabolic SAR, as TA-Lib 0.8.

Why hand-written: see ``moving_averages``; TA-Lib is test-only.  These are path-dependent
Wilder recursions (and SAR's stop-and-reverse state machine), run in numba in TA-Lib's
arithmetic order.  Reference: J. Welles Wilder, "New Concepts in Technical Trading Systems"
(1978); TA-Lib ta_ADX.c, ta_PLUS_DI.c, ta_MINUS_DI.c, ta_SAR.c.
"""

from __future__ import annotations

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
from quantdesk.analytics.indicators._fused import fma
from quantdesk.analytics.indicators.volatility import _true_range


@jit
def _directional_move(diff_up: float, diff_down: float) -> tuple[float, float]:
    """(+DM1, -DM1) for one bar: only the larger of the two outward moves counts, and only if
    it is positive; equal moves count for neither (Wilder's seven cases)."""
    if diff_down > 0.0 and diff_up < diff_down:
        return 0.0, diff_down
    if diff_up > 0.0 and diff_up > diff_down:
        return diff_up, 0.0
    return 0.0, 0.0


@jit
def _nonzero_range(true_range_sum: float) -> bool:
    # A running true-range sum is zero only when every range in it was zero.
    return true_range_sum > 0.0


@jit
def _adx_into(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int, out: FloatArray
) -> None:
    n = close.shape[0]
    lookback = 2 * period - 1
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    plus_dm = 0.0
    minus_dm = 0.0
    true_range = 0.0
    prev_high = high[0]
    prev_low = low[0]
    prev_close = close[0]
    # Seed the smoothed DM and TR with plain sums of the first period-1 one-bar values.
    for today in range(1, period):
        up, down = _directional_move(high[today] - prev_high, prev_low - low[today])
        prev_high = high[today]
        prev_low = low[today]
        plus_dm += up
        minus_dm += down
        true_range += _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
    # Wilder smoothing (x -= x/period; x += today's value), then DX; the first ADX is the
    # plain mean of the first ``period`` DX values, later ones are Wilder-smoothed.
    dx_total = 0.0
    adx = 0.0
    for today in range(period, n):
        up, down = _directional_move(high[today] - prev_high, prev_low - low[today])
        prev_high = high[today]
        prev_low = low[today]
        minus_dm -= minus_dm / period
        plus_dm -= plus_dm / period
        plus_dm += up
        minus_dm += down
        true_range = true_range - true_range / period + _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
        has_dx = False
        dx = 0.0
        if _nonzero_range(true_range):
            minus_di = 100.0 * (minus_dm / true_range)
            plus_di = 100.0 * (plus_dm / true_range)
            di_sum = minus_di + plus_di
            # The DI legs are ratios, so a fixed band on their sum is scale-free (TA_IS_ZERO).
            if not -1e-8 < di_sum < 1e-8:
                dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
                has_dx = True
        if today <= lookback:
            if has_dx:
                dx_total += dx
            if today == lookback:
                adx = dx_total / period
                out[today] = adx
        else:
            if has_dx:
                adx = (adx * (period - 1) + dx) / period
            out[today] = adx


@jit
def _directional_index_into(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    period: int,
    plus: bool,
    out: FloatArray,
) -> None:
    """+DI (``plus``) or -DI: 100 * smoothed DM / smoothed TR."""
    n = close.shape[0]
    if period == 1:
        # TA-Lib's unsmoothed case returns DM1/TR1 as a fraction, not a percentage.
        if n <= 1:
            out[:] = np.nan
            return
        out[0] = np.nan
        for today in range(1, n):
            up, down = _directional_move(high[today] - high[today - 1], low[today - 1] - low[today])
            move = up if plus else down
            if move > 0.0:
                tr = _true_range(high[today], low[today], close[today - 1])
                out[today] = move / tr if tr > 0.0 else 0.0
            else:
                out[today] = 0.0
        return
    if n <= period:
        out[:] = np.nan
        return
    out[:period] = np.nan
    dm = 0.0
    true_range = 0.0
    prev_high = high[0]
    prev_low = low[0]
    prev_close = close[0]
    for today in range(1, period):
        up, down = _directional_move(high[today] - prev_high, prev_low - low[today])
        prev_high = high[today]
        prev_low = low[today]
        dm += up if plus else down
        true_range += _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
    for today in range(period, n):
        up, down = _directional_move(high[today] - prev_high, prev_low - low[today])
        prev_high = high[today]
        prev_low = low[today]
        dm = dm - dm / period + (up if plus else down)
        true_range = true_range - true_range / period + _true_range(prev_high, prev_low, prev_close)
        prev_close = close[today]
        out[today] = 100.0 * (dm / true_range) if _nonzero_range(true_range) else 0.0


@jit
def _sar_into(
    high: FloatArray, low: FloatArray, acceleration: float, maximum: float, out: FloatArray
) -> None:
    n = high.shape[0]
    if n <= 1:
        out[:] = np.nan
        return
    out[0] = np.nan
    if acceleration > maximum:
        acceleration = maximum
    af = acceleration
    # Initial direction from the first two bars' directional movement: short only if -DM1
    # is positive (a tie is long), as TA-Lib decides it.
    _, down = _directional_move(high[1] - high[0], low[0] - low[1])
    is_long = not down > 0.0
    # The first bar is consumed: its extreme is the initial SAR.
    if is_long:
        extreme = high[1]
        sar = low[0]
    else:
        extreme = low[1]
        sar = high[0]
    new_low = low[1]
    new_high = high[1]
    for today in range(1, n):
        prev_low = new_low
        prev_high = new_high
        new_low = low[today]
        new_high = high[today]
        if is_long:
            if new_low <= sar:
                # Stop and reverse: the new SAR is the extreme point of the finished trade,
                # kept outside yesterday's and today's ranges.
                is_long = False
                sar = max(extreme, prev_high, new_high)
                out[today] = sar
                af = acceleration
                extreme = new_low
                sar = fma(af, extreme - sar, sar)
                sar = max(sar, prev_high, new_high)
            else:
                out[today] = sar
                if new_high > extreme:
                    extreme = new_high
                    af = min(af + acceleration, maximum)
                sar = fma(af, extreme - sar, sar)
                sar = min(sar, prev_low, new_low)
        elif new_high >= sar:
            is_long = True
            sar = min(extreme, prev_low, new_low)
            out[today] = sar
            af = acceleration
            extreme = new_high
            sar = fma(af, extreme - sar, sar)
            sar = min(sar, prev_low, new_low)
        else:
            out[today] = sar
            if new_low < extreme:
                extreme = new_low
                af = min(af + acceleration, maximum)
            sar = fma(af, extreme - sar, sar)
            sar = max(sar, prev_high, new_high)


def _hlc(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, int]:
    h, lo, c = as_aligned(high=high, low=low, close=close)
    return h, lo, c, valid_start(h, lo, c)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def adx(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, timeperiod: int = 14
) -> FloatArray:
    """Average Directional Index in [0, 100].  Warm-up ``2*timeperiod - 1``."""
    period = check_period(timeperiod, "timeperiod", 2)
    h, lo, c, start = _hlc(high, low, close)
    out = output_like(len(c), start)
    _adx_into(h[start:], lo[start:], c[start:], period, out[start:])
    return out


def plus_di(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, timeperiod: int = 14
) -> FloatArray:
    """Plus Directional Indicator, ``100 * smoothed +DM / smoothed TR``.  Warm-up
    ``timeperiod`` (1 when it is 1, where TA-Lib returns the raw ratio, not a percentage)."""
    period = check_period(timeperiod, "timeperiod", 1)
    h, lo, c, start = _hlc(high, low, close)
    out = output_like(len(c), start)
    _directional_index_into(h[start:], lo[start:], c[start:], period, True, out[start:])
    return out


def minus_di(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, timeperiod: int = 14
) -> FloatArray:
    """Minus Directional Indicator, ``100 * smoothed -DM / smoothed TR``.  Warm-up as
    ``plus_di``."""
    period = check_period(timeperiod, "timeperiod", 1)
    h, lo, c, start = _hlc(high, low, close)
    out = output_like(len(c), start)
    _directional_index_into(h[start:], lo[start:], c[start:], period, False, out[start:])
    return out


def sar(
    high: npt.ArrayLike, low: npt.ArrayLike, acceleration: float = 0.02, maximum: float = 0.2
) -> FloatArray:
    """Parabolic SAR.  ``acceleration`` is both the starting and the step acceleration
    factor, capped at ``maximum`` (an acceleration above the maximum is lowered to it).
    Warm-up 1: the first bar only seeds the extreme point."""
    h, lo = as_aligned(high=high, low=low)
    step = check_real(acceleration, "acceleration", 0.0)
    cap = check_real(maximum, "maximum", 0.0)
    start = valid_start(h, lo)
    out = output_like(len(h), start)
    _sar_into(h[start:], lo[start:], step, cap, out[start:])
    return out
