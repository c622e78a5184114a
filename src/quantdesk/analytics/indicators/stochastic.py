"""Range oscillators: the slow Stochastic, the Stochastic RSI and Williams %R, reproducing
TA-Lib 0.8.  All three place a value inside its highest-high/lowest-low range over the last
bars (``_windows.range_scan_into``); the stochastic lines are then smoothed with TA-Lib's
moving averages, every line starting where TA-Lib starts it.

Why hand-written: see ``moving_averages``; TA-Lib is a test-only reference.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from quantdesk.analytics.indicators._averages import ma_lookback, moving_average_from
from quantdesk.analytics.indicators._common import (
    FloatArray,
    as_aligned,
    as_series,
    check_matype,
    check_period,
    output_like,
    valid_start,
)
from quantdesk.analytics.indicators._windows import (
    fast_k_into,
    rescan_extremes_into,
    scan_fast_k_into,
    scan_williams_r_into,
)
from quantdesk.analytics.indicators.momentum import rsi_into


def _fast_k(
    high: FloatArray, low: FloatArray, close: FloatArray, period: int, out: FloatArray
) -> None:
    """Fast %K into ``out``, with TA-Lib's STOCH answers where the range has a gap.

    The block scan is exact and O(1) per bar; TA-Lib's STOCH rescans instead, which treats a
    NaN in ``high`` or ``low`` differently, so gappy input takes the (slower) rescan.  A sum
    that is not finite is the cheap test for a NaN (an infinity also takes the rescan,
    which is as exact).
    """
    if np.isfinite(np.sum(high) + np.sum(low)):
        scan_fast_k_into(high, low, close, period, out)
        return
    top = np.empty(len(close))
    bottom = np.empty(len(close))
    rescan_extremes_into(high, low, period, top, bottom)
    fast_k_into(top, bottom, close, period, out)


def _smooth_pair(
    raw: FloatArray,
    raw_start: int,
    first_period: int,
    first_matype: int,
    second_period: int,
    second_matype: int,
) -> tuple[FloatArray, FloatArray]:
    """Smooth ``raw`` twice and blank both results up to the second one's first value.

    TA-Lib's STOCH/STOCHF return their two lines from the same bar, so the first line is
    hidden until the second exists.
    """
    first = moving_average_from(raw, raw_start, first_period, first_matype)
    first_start = min(raw_start + ma_lookback(first_period, first_matype), len(raw))
    second = moving_average_from(first, first_start, second_period, second_matype)
    common = min(first_start + ma_lookback(second_period, second_matype), len(raw))
    first[:common] = np.nan
    return first, second


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def stoch(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    fastk_period: int = 5,
    slowk_period: int = 3,
    slowk_matype: int = 0,
    slowd_period: int = 3,
    slowd_matype: int = 0,
) -> tuple[FloatArray, FloatArray]:
    """Slow stochastic ``(slowk, slowd)``: %K smoothed by ``MA(slowk_period, slowk_matype)``,
    %D = ``MA(slowk, slowd_period, slowd_matype)``.  Both start on the same bar, after
    ``fastk_period-1`` plus the two moving averages' warm-ups."""
    h, lo, c = as_aligned(high=high, low=low, close=close)
    fastk = check_period(fastk_period, "fastk_period", 1)
    slowk = check_period(slowk_period, "slowk_period", 1)
    slowd = check_period(slowd_period, "slowd_period", 1)
    k_type = check_matype(slowk_matype, "slowk_matype")
    d_type = check_matype(slowd_matype, "slowd_matype")
    start = valid_start(h, lo, c)
    raw = output_like(len(c), start)
    _fast_k(h[start:], lo[start:], c[start:], fastk, raw[start:])
    raw_start = min(start + fastk - 1, len(c))
    return _smooth_pair(raw, raw_start, slowk, k_type, slowd, d_type)


def stochrsi(
    close: npt.ArrayLike,
    timeperiod: int = 14,
    fastk_period: int = 5,
    fastd_period: int = 3,
    fastd_matype: int = 0,
) -> tuple[FloatArray, FloatArray]:
    """Stochastic RSI ``(fastk, fastd)``: the fast stochastic of ``RSI(timeperiod)`` over
    ``fastk_period`` bars and its ``MA(fastd_period, fastd_matype)``."""
    x = as_series(close, "close")
    period = check_period(timeperiod, "timeperiod", 2)
    fastk = check_period(fastk_period, "fastk_period", 1)
    fastd = check_period(fastd_period, "fastd_period", 1)
    d_type = check_matype(fastd_matype, "fastd_matype")
    start = valid_start(x)
    strength = output_like(len(x), start)
    rsi_into(x[start:], period, strength[start:])
    rsi_start = min(start + period, len(x))
    raw = output_like(len(x), rsi_start)
    tail = strength[rsi_start:]
    # TA-Lib's STOCHRSI runs STOCHF's rescan over the RSI, but the block scan gives the same
    # answer here even on gappy data: a NaN stays in Wilder's averages, so from the first
    # NaN of the RSI on every close of the stochastic is NaN too.
    scan_fast_k_into(tail, tail, tail, fastk, raw[rsi_start:])
    raw_start = min(rsi_start + fastk - 1, len(x))
    # STOCHF: fast %K is itself the first line (a period-1 "smoothing" is a copy).
    return _smooth_pair(raw, raw_start, 1, 0, fastd, d_type)


def willr(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, timeperiod: int = 14
) -> FloatArray:
    """Williams %R in [-100, 0]: ``-100 * (highest high - close) / (highest high - lowest
    low)`` over ``timeperiod`` bars (0 for a window with no range).  Warm-up
    ``timeperiod-1``."""
    h, lo, c = as_aligned(high=high, low=low, close=close)
    period = check_period(timeperiod, "timeperiod", 2)
    start = valid_start(h, lo, c)
    out = output_like(len(c), start)
    scan_williams_r_into(h[start:], lo[start:], c[start:], period, out[start:])
    return out
