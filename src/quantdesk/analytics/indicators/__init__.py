"""Technical indicators over float64 NumPy arrays, identical to TA-Lib where TA-Lib has them.

Every function takes array-likes (lists, NumPy arrays, pandas Series) with TA-Lib's parameter
names and defaults, and returns arrays of the input's length with NaN during the warm-up in
the same positions as TA-Lib.  See ``docs/indicators.md`` for definitions, warm-up lengths and
the measured agreement with TA-Lib.
"""

from __future__ import annotations

from quantdesk.analytics.indicators.extra import (
    PivotLevels,
    donchian,
    keltner,
    pivot_points,
    supertrend,
    vwap,
)
from quantdesk.analytics.indicators.momentum import cci, macd, mfi, mom, roc, rsi, trix
from quantdesk.analytics.indicators.moving_averages import (
    dema,
    ema,
    kama,
    ma,
    sma,
    t3,
    tema,
    trima,
    wma,
)
from quantdesk.analytics.indicators.stochastic import stoch, stochrsi, willr
from quantdesk.analytics.indicators.trend import adx, minus_di, plus_di, sar
from quantdesk.analytics.indicators.volatility import atr, bbands, natr, trange
from quantdesk.analytics.indicators.volume import ad, adosc, obv

__all__ = [
    "PivotLevels",
    "ad",
    "adosc",
    "adx",
    "atr",
    "bbands",
    "cci",
    "dema",
    "donchian",
    "ema",
    "kama",
    "keltner",
    "ma",
    "macd",
    "mfi",
    "minus_di",
    "mom",
    "natr",
    "obv",
    "pivot_points",
    "plus_di",
    "roc",
    "rsi",
    "sar",
    "sma",
    "stoch",
    "stochrsi",
    "supertrend",
    "t3",
    "tema",
    "trange",
    "trima",
    "trix",
    "vwap",
    "willr",
    "wma",
]
