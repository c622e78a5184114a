"""numba kernels for the moving averages and TA-Lib's ``MA`` dispatcher.

Each kernel fills every element of ``out`` (same length as its input): NaN during the
warm-up, values after.  They assume clean input; the public functions in
``moving_averages`` (and the indicators that smooth with a moving average) skip NaN
prefixes and check arguments.  The arithmetic follows TA-Lib 0.8 step for step, including
its fused multiply-adds (``_fused.fma``), so results are bit-identical on x86-64 with FMA.
"""

from __future__ import annotations

import numpy as np

from quantdesk.analytics._jit import jit
from quantdesk.analytics.indicators._common import (
    DEMA,
    EMA,
    KAMA,
    SMA,
    T3,
    TEMA,
    TRIMA,
    WMA,
    FloatArray,
    output_like,
)
from quantdesk.analytics.indicators._fused import fma

# TA-Lib's T3 as used by MA(matype=8) always takes a volume factor of 0.7.
T3_VFACTOR = 0.7
# KAMA's smoothing constants span an EMA(2) (fastest) to an EMA(30) (slowest), as in
# Kaufman's "Smarter Trading" and TA-Lib's ta_KAMA.c.
_KAMA_SLOWEST = 2.0 / (30.0 + 1.0)
_KAMA_SPREAD = 2.0 / (2.0 + 1.0) - _KAMA_SLOWEST


def ma_lookback(timeperiod: int, matype: int) -> int:
    """Bars TA-Lib's ``MA(timeperiod, matype)`` consumes before its first value."""
    if timeperiod == 1:
        return 0
    lookbacks = {
        SMA: timeperiod - 1,
        EMA: timeperiod - 1,
        WMA: timeperiod - 1,
        DEMA: 2 * (timeperiod - 1),
        TEMA: 3 * (timeperiod - 1),
        TRIMA: timeperiod - 1,
        KAMA: timeperiod,
        T3: 6 * (timeperiod - 1),
    }
    return lookbacks[matype]


@jit
def sma_into(x: FloatArray, period: int, out: FloatArray) -> None:
    n = x.shape[0]
    lookback = period - 1
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    # A running total, added then trimmed, exactly as TA-Lib's ta_SMA.c does it: the same
    # rounding sequence keeps us within an ulp of TA-Lib even after a million bars.
    total = 0.0
    for i in range(lookback):
        total += x[i]
    for i in range(lookback, n):
        total += x[i]
        value = total
        total -= x[i - lookback]
        out[i] = value / period


@jit
def ema_into(x: FloatArray, period: int, out: FloatArray) -> None:
    n = x.shape[0]
    if period == 1:
        # An explicit copy, as TA-Lib 0.8 does: with k = 1 the recursion (x-prev)*1 + prev
        # returns x only while consecutive values are within a factor of two.
        out[:] = x
        return
    lookback = period - 1
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    k = 2.0 / (period + 1)
    seed = 0.0
    for i in range(period):
        seed += x[i]
    prev = seed / period
    out[lookback] = prev
    for i in range(period, n):
        prev = fma(x[i] - prev, k, prev)
        out[i] = prev


@jit
def wma_into(x: FloatArray, period: int, out: FloatArray) -> None:
    n = x.shape[0]
    if period == 1:
        out[:] = x
        return
    lookback = period - 1
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    divider = period * (period + 1) / 2.0
    # ``weighted`` is sum(w_j * x_j), ``plain`` is sum(x_j) over the window: sliding by one
    # bar subtracts ``plain`` (every weight drops by one) and adds the newest bar at full
    # weight, TA-Lib's O(1) update.  The sums are rebuilt from the window every 8*period
    # bars so that rounding residue cannot pile up (TA-Lib issue #255); the rebuild uses
    # the priming order, so a rebuilt bar equals the same bar computed from scratch.
    plain = 0.0
    weighted = 0.0
    for i in range(lookback):
        plain += x[i]
        weighted += x[i] * (i + 1)
    until_rebuild = 8 * period
    trailing_value = 0.0
    # The loop runs over views that start at 0 (the window's newest bar, its oldest and
    # the output), so its index is provably non-negative and numba emits no negative-index
    # wrap-around for the accesses (the window then starts at x[i]).
    newest = x[lookback:]
    oldest = x[: n - lookback]
    tail = out[lookback:]
    for i in range(tail.shape[0]):
        value = newest[i]
        plain += value
        plain -= trailing_value
        weighted += value * period
        until_rebuild -= 1
        if until_rebuild <= 0:
            until_rebuild = 8 * period
            plain = 0.0
            weighted = 0.0
            for j in range(period):
                plain += x[i + j]
                weighted += x[i + j] * (j + 1)
        trailing_value = oldest[i]
        tail[i] = weighted / divider
        weighted -= plain


@jit
def trima_into(x: FloatArray, period: int, out: FloatArray) -> None:
    n = x.shape[0]
    lookback = period - 1
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    # Triangular weights 1,2,..,m,..,2,1 kept as three running sums (TA-Lib's ta_TRIMA.c):
    # ``numerator`` is the weighted window, ``rising``/``falling`` the plain sums of its
    # older and newer halves, so each slide costs a handful of additions.
    half = period >> 1
    odd = period % 2 == 1
    if odd:
        factor = 1.0 / ((half + 1) * (half + 1))
        middle = half
    else:
        factor = 1.0 / (half * (half + 1))
        middle = half - 1
    today = middle + half
    numerator = 0.0
    falling = 0.0
    for i in range(middle, -1, -1):
        falling += x[i]
        numerator += falling
    rising = 0.0
    middle += 1
    for i in range(middle, today + 1):
        rising += x[i]
        numerator += rising
    trailing = 0
    value = x[trailing]
    trailing += 1
    out[lookback] = numerator * factor
    today += 1
    while today < n:
        numerator -= falling
        falling -= value
        value = x[middle]
        middle += 1
        falling += value
        if odd:
            numerator += rising
            rising -= value
        else:
            rising -= value
            numerator += rising
        value = x[today]
        today += 1
        rising += value
        numerator += value
        value = x[trailing]
        trailing += 1
        out[today - 1] = numerator * factor


@jit
def _kama_step(value: float, old: float, volatility: float, prev: float) -> float:
    """One KAMA update from the bar ``value``, the window's oldest bar ``old`` and the
    window's path length ``volatility``."""
    change = value - old
    # The ratio is at most 1 (a path is never shorter than its net move; rounding in the
    # running sum can make it look so) and a window without movement counts as fully
    # efficient.  This is the guard TA-Lib 0.8.1 applies, found by matching its output.
    fully_efficient = volatility <= 0.0 or volatility <= abs(change)
    efficiency = 1.0 if fully_efficient else abs(change / volatility)
    smoothing = fma(efficiency, _KAMA_SPREAD, _KAMA_SLOWEST)
    smoothing *= smoothing
    return fma(value - prev, smoothing, prev)


@jit
def kama_into(x: FloatArray, period: int, out: FloatArray) -> None:
    n = x.shape[0]
    if period == 1:
        # TA-Lib 0.8: no smoothing at period 1, the output is the input.
        out[:] = x
        return
    lookback = period
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    # Kaufman's efficiency ratio: net change over ``period`` bars divided by the sum of the
    # absolute bar-to-bar changes ("volatility"), kept as a running sum.
    volatility = 0.0
    # Consecutive exactly-zero changes: once a whole window of them has passed, the running
    # sum is known to be zero and its add-then-subtract residue is dropped (TA-Lib 0.8).
    flat_run = 0
    for i in range(period):
        step = x[i] - x[i + 1]
        volatility += abs(step)
        flat_run = flat_run + 1 if step == 0.0 else 0
    prev = x[period - 1]
    prev = _kama_step(x[period], x[0], volatility, prev)
    out[period] = prev
    # Later bars move the window of the running sum by one.  The loop runs over views that
    # start at 0 (the bar, the one before it, the window's oldest and the one that leaves),
    # so its index is provably non-negative and numba emits no negative-index wrap-around
    # for the five accesses: a fifth of KAMA's time (issue 19).
    values = x[period + 1 :]
    yesterdays = x[period : n - 1]
    oldest = x[1 : n - period]
    leaving = x[: n - period - 1]
    tail = out[period + 1 :]
    for i in range(tail.shape[0]):
        value = values[i]
        volatility -= abs(leaving[i] - oldest[i])
        step = value - yesterdays[i]
        volatility += abs(step)
        flat_run = flat_run + 1 if step == 0.0 else 0
        if flat_run >= period:
            flat_run = period
            volatility = 0.0
        # _kama_step written out: called here, it made KAMA(30) on 1,000,000 bars take
        # 2.2 ms instead of 1.7 ms.
        change = value - oldest[i]
        fully_efficient = volatility <= 0.0 or volatility <= abs(change)
        efficiency = 1.0 if fully_efficient else abs(change / volatility)
        smoothing = fma(efficiency, _KAMA_SPREAD, _KAMA_SLOWEST)
        smoothing *= smoothing
        prev = fma(value - prev, smoothing, prev)
        tail[i] = prev


@jit
def ema_cascade_into(x: FloatArray, period: int, depth: int, combine: int, out: FloatArray) -> None:
    """EMA of EMA (of EMA) ``depth`` (2 or 3) deep, advanced in lockstep in one pass.

    Stage ``s`` takes stage ``s-1``'s values as they appear and is seeded, as TA-Lib's DEMA,
    TEMA and TRIX do, with the plain average of its first ``period`` inputs; the results are
    bit-identical to running EMA on the previous stage's output, without the temporaries.
    ``combine`` picks the output: 0 = DEMA (2*e1 - e2), 1 = TEMA (3*e1 - 3*e2 + e3),
    2 = TRIX (one-bar rate of change of e3, in percent).
    """
    n = x.shape[0]
    lag = period - 1
    warmup = depth * lag
    lookback = warmup + (1 if combine == 2 else 0)
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    # At period 1 DEMA's and TEMA's stages are copies of their input (TA-Lib's EMA copies
    # explicitly).  TRIX runs the k = 1 recursion instead, as TA-Lib's TRIX does: it differs
    # from a copy when a value more than doubles, and a NaN never leaves it.
    k = 2.0 / (period + 1)
    copy = period == 1 and combine != 2
    # Warm-up: stage s collects its seed over bars s*lag .. s*lag+lag, then runs.
    ema = np.zeros(3)
    seed = np.zeros(3)
    for i in range(warmup + 1):
        value = x[i]
        for s in range(depth):
            if i < s * lag + lag:
                seed[s] += value
                break
            if i == s * lag + lag:
                seed[s] += value
                ema[s] = seed[s] / period
            else:
                ema[s] = fma(value - ema[s], k, ema[s])
            value = ema[s]
    e1 = ema[0]
    e2 = ema[1]
    e3 = ema[2]
    # Steady state: every stage live, a straight chain of fused steps per bar.
    if copy:
        e1 = e2 = e3 = x[0]
    if combine == 0:
        out[warmup] = 2.0 * e1 - e2
        for i in range(warmup + 1, n):
            if copy:
                e1 = e2 = x[i]
            else:
                e1 = fma(x[i] - e1, k, e1)
                e2 = fma(e1 - e2, k, e2)
            out[i] = 2.0 * e1 - e2
    elif combine == 1:
        out[warmup] = e3 + (3.0 * e1 - 3.0 * e2)
        for i in range(warmup + 1, n):
            if copy:
                e1 = e2 = e3 = x[i]
            else:
                e1 = fma(x[i] - e1, k, e1)
                e2 = fma(e1 - e2, k, e2)
                e3 = fma(e2 - e3, k, e3)
            out[i] = e3 + (3.0 * e1 - 3.0 * e2)
    else:
        for i in range(warmup + 1, n):
            previous = e3
            e1 = fma(x[i] - e1, k, e1)
            e2 = fma(e1 - e2, k, e2)
            e3 = fma(e2 - e3, k, e3)
            out[i] = (e3 / previous - 1.0) * 100.0 if previous != 0.0 else 0.0


@jit
def t3_into(x: FloatArray, period: int, vfactor: float, out: FloatArray) -> None:
    n = x.shape[0]
    if period == 1:
        # TA-Lib copies: its coefficients sum to 1 only in exact arithmetic.
        out[:] = x
        return
    lookback = 6 * (period - 1)
    if n <= lookback:
        out[:] = np.nan
        return
    out[:lookback] = np.nan
    # Tillson's T3: six chained EMAs, each seeded with the simple average of the first
    # ``period`` values of the stage before, all advancing in lockstep (TA-Lib's ta_T3.c).
    k = 2.0 / (period + 1.0)
    keep = 1.0 - k
    ema = np.zeros(6)
    today = 0
    total = 0.0
    for _ in range(period):
        total += x[today]
        today += 1
    ema[0] = total / period
    for stage in range(1, 6):
        total = ema[stage - 1]
        for _ in range(period - 1):
            ema[0] = fma(keep, ema[0], k * x[today])
            for s in range(1, stage):
                ema[s] = fma(keep, ema[s], k * ema[s - 1])
            today += 1
            total += ema[stage - 1]
        ema[stage] = total / period
    square = vfactor * vfactor
    c1 = -(square * vfactor)
    c2 = 3.0 * (square - c1)
    c3 = -6.0 * square - 3.0 * (vfactor - c1)
    c4 = 1.0 + 3.0 * vfactor - c1 + 3.0 * square
    e1, e2, e3, e4, e5, e6 = ema[0], ema[1], ema[2], ema[3], ema[4], ema[5]
    out[lookback] = _t3_blend(e3, e4, e5, e6, c1, c2, c3, c4)
    for i in range(lookback + 1, n):
        e1 = fma(keep, e1, k * x[i])
        e2 = fma(keep, e2, k * e1)
        e3 = fma(keep, e3, k * e2)
        e4 = fma(keep, e4, k * e3)
        e5 = fma(keep, e5, k * e4)
        e6 = fma(keep, e6, k * e5)
        out[i] = _t3_blend(e3, e4, e5, e6, c1, c2, c3, c4)


@jit
def _t3_blend(
    e3: float, e4: float, e5: float, e6: float, c1: float, c2: float, c3: float, c4: float
) -> float:
    # c1*e6 + c2*e5 + c3*e4 + c4*e3, accumulated left to right with fused steps (the
    # contraction TA-Lib's FMA build performs, so the last bit agrees).
    return fma(c4, e3, fma(c3, e4, fma(c1, e6, c2 * e5)))


@jit
def ma_into(x: FloatArray, period: int, matype: int, out: FloatArray) -> None:
    """TA-Lib's ``TA_MA``: a period of 1 copies the input whatever the type."""
    if period == 1:
        out[:] = x
    elif matype == 0:
        sma_into(x, period, out)
    elif matype == 1:
        ema_into(x, period, out)
    elif matype == 2:
        wma_into(x, period, out)
    elif matype == 3:
        ema_cascade_into(x, period, 2, 0, out)
    elif matype == 4:
        ema_cascade_into(x, period, 3, 1, out)
    elif matype == 5:
        trima_into(x, period, out)
    elif matype == 6:
        kama_into(x, period, out)
    else:
        t3_into(x, period, T3_VFACTOR, out)


def moving_average_from(values: FloatArray, start: int, period: int, matype: int) -> FloatArray:
    """``MA(period, matype)`` of ``values[start:]``, laid out at full length (NaN before).

    Used to smooth an indicator that itself has a warm-up, the way TA-Lib chains them: the
    moving average starts on the first value of its input.
    """
    out = output_like(len(values), start)
    ma_into(values[start:], period, matype, out[start:])
    return out
