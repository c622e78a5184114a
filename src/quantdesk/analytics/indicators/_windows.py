"""Rolling highest-high / lowest-low over a fixed window, in O(1) per bar, and the two
oscillators that place the close inside that range (fast %K and Williams %R).

The scan is van Herk / Gil-Werman's, which TA-Lib 0.8 also uses for WILLR: cut the series
into blocks of ``period`` bars; a window then covers the tail of one block and the head of
the next, so its extreme is the larger of a suffix extreme (computed backwards over the
older block) and a prefix extreme (running forwards in the newer one).  Every bar costs a
fixed few comparisons whatever the period, where rescanning on expiry degrades to
O(period) per bar in a trend.  Extremes are exact, so the algorithm never changes a value.
"""

from __future__ import annotations

import numpy as np

from quantdesk.analytics._jit import jit
from quantdesk.analytics.indicators._common import FloatArray

EXTREMES = 0  # write the highest high and lowest low
FAST_K = 1  # write the stochastic %K of the close
WILLIAMS_R = 2  # write Williams %R of the close


@jit
def _is_flat(top: float, bottom: float) -> bool:
    # A range within 1e-14 of its own price level is machine-flat (TA-Lib 0.8's scaled
    # guard, issues #107/#253): dividing its residue would give [0, 100] noise, e.g. for a
    # stochastic of an RSI that has stopped moving.
    return abs(top - bottom) <= 1e-14 * (abs(top) + abs(bottom))


@jit
def range_scan_into(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    period: int,
    mode: int,
    out_a: FloatArray,
    out_b: FloatArray,
) -> None:
    """Scan ``period``-bar windows; ``mode`` says what to write for each (see constants).

    ``out_b`` is only written in ``EXTREMES`` mode.  Bars before ``period-1`` get NaN.
    """
    n = high.shape[0]
    lookback = period - 1

    # A closure, so numba inlines it: passing the arrays to a separate function on every
    # bar would cost a reference-count round trip per call.
    def emit(bar: int, top: float, bottom: float) -> None:
        if mode == EXTREMES:
            out_a[bar] = top
            out_b[bar] = bottom
        elif _is_flat(top, bottom):
            out_a[bar] = 0.0
        elif mode == FAST_K:
            out_a[bar] = ((close[bar] - bottom) / (top - bottom)) * 100.0
        else:
            # Clamped to [-100, 0]: reachable only when a close lies outside its own bar.
            out_a[bar] = min(max(((top - close[bar]) / (top - bottom)) * -100.0, -100.0), 0.0)

    out_a[: min(lookback, n)] = np.nan
    if mode == EXTREMES:
        out_b[: min(lookback, n)] = np.nan
    suffix_high = np.empty(period)
    suffix_low = np.empty(period)
    for block in range(0, n - lookback, period):
        # Suffix extremes of the block [block, block+period-1], which is complete here.
        top = high[block + lookback]
        bottom = low[block + lookback]
        suffix_high[lookback] = top
        suffix_low[lookback] = bottom
        for i in range(block + lookback - 1, block - 1, -1):
            top = max(top, high[i])
            bottom = min(bottom, low[i])
            suffix_high[i - block] = top
            suffix_low[i - block] = bottom
        emit(block + lookback, top, bottom)
        # Windows starting inside this block end inside the next one.
        head_high = -np.inf
        head_low = np.inf
        for offset in range(1, period):
            end = block + lookback + offset
            if end >= n:
                break
            head_high = max(head_high, high[end])
            head_low = min(head_low, low[end])
            emit(end, max(suffix_high[offset], head_high), min(suffix_low[offset], head_low))
