"""Returns and wealth: simple and log returns from prices, compounding, drawdowns, CAGR.

Conventions (the same in every risk measure and optimiser):

* a *return* is a simple (arithmetic) period return ``p_t / p_{t-1} - 1`` unless the name
  says ``log``;
* arrays are time along axis 0: a 1-D array is one series, a ``(T, N)`` array is N assets
  (or N windows) side by side, and every reduction here reduces axis 0;
* ``periods_per_year`` is 252 trading days by default (:data:`TRADING_DAYS`); pass 52 for
  weekly or 12 for monthly data.  Volatility scales with the square root of time.

The wealth index counts the starting value: a series whose first return is -10% has a 10%
drawdown, as empyrical's ``max_drawdown`` (which anchors its running peak at the start)
counts it.

Hand-written because each function is one or two NumPy expressions; pandas would make the
pure core depend on index alignment that callers here never need.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

TRADING_DAYS: Final = 252
"""Trading days per year: the annualisation every measure uses unless told otherwise."""


def as_returns(returns: ArrayLike) -> FloatArray:
    """``returns`` as a float64 array with time on axis 0; refuses empty or non-finite data."""
    array = np.asarray(returns, dtype=np.float64)
    if array.ndim not in (1, 2):
        raise ValueError(f"returns must be 1-D or 2-D (time x assets), got {array.ndim}-D")
    if array.shape[0] == 0:
        raise ValueError("returns must not be empty")
    if not np.all(np.isfinite(array)):
        raise ValueError("returns must be finite (drop or fill missing days first)")
    if np.any(array <= -1.0):
        raise ValueError("a simple return of -100% or less wipes the position out")
    return array


def simple_returns(prices: ArrayLike) -> FloatArray:
    """Period returns ``p_t / p_{t-1} - 1`` of prices (time on axis 0): one row fewer."""
    p = np.asarray(prices, dtype=np.float64)
    if p.shape[0] < 2:
        raise ValueError("need at least two prices for a return")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("prices must be finite and > 0")
    result: FloatArray = p[1:] / p[:-1] - 1.0
    return result


def log_returns(prices: ArrayLike) -> FloatArray:
    """Continuously compounded returns ``ln(p_t / p_{t-1})``."""
    return np.log1p(simple_returns(prices))


def wealth_index(returns: ArrayLike, start: float = 1.0) -> FloatArray:
    """Value of ``start`` invested at the beginning, *including* the starting row.

    The result has one more row than ``returns``: row 0 is ``start``.
    """
    r = np.asarray(returns, dtype=np.float64)
    out = np.empty((r.shape[0] + 1, *r.shape[1:]), dtype=np.float64)
    out[0] = start
    np.cumprod(1.0 + r, axis=0, out=out[1:])
    out[1:] *= start
    return out


def cumulative_return(returns: ArrayLike) -> FloatArray | float:
    """Total compounded return over the whole period."""
    value: FloatArray = np.prod(1.0 + np.asarray(returns, dtype=np.float64), axis=0) - 1.0
    return float(value) if value.ndim == 0 else value


def annual_return(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> FloatArray | float:
    """Compound annual growth rate ``(1 + total)^(periods_per_year / T) - 1`` (empyrical's
    ``annual_return``/``cagr``)."""
    r = np.asarray(returns, dtype=np.float64)
    years = r.shape[0] / periods_per_year
    growth = np.prod(1.0 + r, axis=0)
    value: FloatArray = growth ** (1.0 / years) - 1.0
    return float(value) if value.ndim == 0 else value


def drawdowns(returns: ArrayLike) -> FloatArray:
    """Drawdown after each period, ``wealth / running peak - 1`` (<= 0), one row per return.

    The running peak starts at the starting value, so an opening loss is a drawdown.
    """
    wealth = wealth_index(returns)
    peak = np.maximum.accumulate(wealth, axis=0)
    result: FloatArray = (wealth / peak - 1.0)[1:]
    return result
