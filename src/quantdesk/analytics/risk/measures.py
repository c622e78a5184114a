"""Risk and performance measures over return arrays: volatility, Sharpe, Sortino, drawdown...

Every function takes simple period returns with time on axis 0 (1-D: one series, ``(T, N)``:
N series side by side) and reduces axis 0.  Conventions, chosen to agree with empyrical (and
quantstats where it defines the same thing) to 1e-9 on the same inputs:

* ``periods_per_year`` = 252 by default; volatilities and downside deviations scale with
  ``sqrt(periods_per_year)``, mean returns with ``periods_per_year``.
* ``risk_free`` and ``required_return`` are *per period* (a daily rate for daily returns),
  as empyrical takes them; the HTTP API converts an annual rate with ``rate / 252``.
  quantstats de-annualises its ``rf`` geometrically instead, ``(1 + rf)^(1/252) - 1``.
* standard deviations use ``ddof=1`` (the sample estimator); downside deviation is
  ``sqrt(mean(min(r - mar, 0)^2))`` over *all* periods (the zeros of the good days count,
  Sortino & Price; empyrical's ``downside_risk``; quantstats' ``sortino`` denominator).
* drawdowns count the starting value (see :mod:`quantdesk.analytics.returns`).  Losses are
  reported as **positive fractions**: ``max_drawdown`` is 0.25 for a fall of a quarter,
  where empyrical and quantstats answer -0.25.

Hand-written: each measure is a line of NumPy, vectorised over columns and (through
:func:`rolling`) over windows at once, which the reference libraries do with pandas loops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from quantdesk.analytics.returns import TRADING_DAYS, FloatArray, annual_return, drawdowns

__all__ = [
    "beta",
    "calmar",
    "correlation",
    "downside_deviation",
    "drawdown_duration",
    "max_drawdown",
    "rolling",
    "sharpe",
    "sortino",
    "volatility",
]

Scalarish = FloatArray | float


def _out(value: Any) -> Scalarish:
    array = np.asarray(value, dtype=np.float64)
    return float(array) if array.ndim == 0 else array


def _mean_std(values: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Mean and sample standard deviation (``ddof=1``) over axis 0.

    The squared deviations are summed by ``einsum`` rather than ``np.std``: no squared
    temporary, which over the windows of :func:`rolling` (a ``w x T`` strided view) is what
    made a rolling Sharpe slower than empyrical's.
    """
    mean = values.mean(axis=0)
    dev = values - mean
    var = np.einsum("i...,i...->...", dev, dev) / (values.shape[0] - 1)
    return mean, np.sqrt(var)


def volatility(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> Scalarish:
    """Annualised standard deviation, ``std(r, ddof=1) * sqrt(periods_per_year)``."""
    _, std = _mean_std(np.asarray(returns, dtype=np.float64))
    return _out(std * np.sqrt(periods_per_year))


def downside_deviation(
    returns: ArrayLike, required_return: float = 0.0, periods_per_year: float = TRADING_DAYS
) -> Scalarish:
    """Annualised root-mean-square shortfall below ``required_return`` (per period)."""
    shortfall = np.minimum(np.asarray(returns, dtype=np.float64) - required_return, 0.0)
    return _out(np.sqrt(np.mean(shortfall * shortfall, axis=0)) * np.sqrt(periods_per_year))


def sharpe(
    returns: ArrayLike, risk_free: float = 0.0, periods_per_year: float = TRADING_DAYS
) -> Scalarish:
    """Annualised Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)``; NaN when
    the excess returns do not vary."""
    r = np.asarray(returns, dtype=np.float64)
    mean, std = _mean_std(r - risk_free if risk_free else r)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = mean / np.where(std > 0, std, np.nan)
    return _out(ratio * np.sqrt(periods_per_year))


def sortino(
    returns: ArrayLike, required_return: float = 0.0, periods_per_year: float = TRADING_DAYS
) -> Scalarish:
    """Annualised Sortino ratio: mean excess return x ppy over the annualised downside
    deviation; +inf when nothing falls below ``required_return`` (empyrical's answer)."""
    excess = np.asarray(returns, dtype=np.float64) - required_return
    down = np.asarray(downside_deviation(returns, required_return, periods_per_year))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.mean(excess, axis=0) * periods_per_year / down)


def max_drawdown(returns: ArrayLike) -> Scalarish:
    """Largest fall from a running peak (the start counted) as a positive fraction."""
    return _out(-np.min(drawdowns(returns), axis=0) + 0.0)


def drawdown_duration(returns: ArrayLike) -> Scalarish:
    """Longest run of periods spent below a previous peak (periods, not calendar days).

    A drawdown lasts from the first period below the peak to the last period before the
    wealth index is back at (or above) it; one still open at the end counts to the end.
    """
    under = drawdowns(returns) < 0.0
    flat = under.reshape(under.shape[0], -1)
    longest = np.zeros(flat.shape[1])
    run = np.zeros(flat.shape[1])
    for row in flat:  # T steps of vector work: the columns advance together
        run = np.where(row, run + 1.0, 0.0)
        np.maximum(longest, run, out=longest)
    return _out(longest.reshape(under.shape[1:]))


def calmar(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> Scalarish:
    """Compound annual growth rate over the maximum drawdown (empyrical's ``calmar_ratio``);
    NaN without a drawdown."""
    mdd = np.asarray(max_drawdown(returns))
    cagr = np.asarray(annual_return(returns, periods_per_year))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(mdd > 0, cagr / np.where(mdd > 0, mdd, 1.0), np.nan))


def _against(returns: ArrayLike, benchmark: ArrayLike) -> tuple[FloatArray, FloatArray]:
    r = np.asarray(returns, dtype=np.float64)
    b = np.asarray(benchmark, dtype=np.float64)
    if b.shape[0] != r.shape[0]:
        raise ValueError(f"benchmark has {b.shape[0]} periods, returns {r.shape[0]}")
    if b.ndim < r.ndim:  # one benchmark for every column
        b = np.broadcast_to(b.reshape(b.shape + (1,) * (r.ndim - b.ndim)), r.shape)
    dr = r - r.mean(axis=0)
    db = b - b.mean(axis=0)
    return dr, db


def beta(returns: ArrayLike, benchmark: ArrayLike) -> Scalarish:
    """Slope of returns on the benchmark's, ``cov(r, b) / var(b)`` (empyrical's ``beta``;
    a constant risk-free rate cancels out of it)."""
    dr, db = _against(returns, benchmark)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.sum(dr * db, axis=0) / np.sum(db * db, axis=0))


def correlation(returns: ArrayLike, benchmark: ArrayLike) -> Scalarish:
    """Pearson correlation with the benchmark's returns."""
    dr, db = _against(returns, benchmark)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(
            np.sum(dr * db, axis=0) / np.sqrt(np.sum(dr * dr, axis=0) * np.sum(db * db, axis=0))
        )


def rolling(
    measure: Callable[..., Scalarish],
    returns: ArrayLike,
    window: int,
    *args: ArrayLike,
    **kwargs: Any,
) -> FloatArray:
    """``measure`` over every trailing ``window`` of periods: ``T - window + 1`` rows, row i
    covering periods ``i .. i + window - 1`` (empyrical's ``roll_*`` functions).

    Every window is evaluated in one vectorised call: the windows become extra columns.
    Extra positional arrays (a benchmark) are windowed alongside.
    """
    r = np.asarray(returns, dtype=np.float64)
    if not 1 <= window <= r.shape[0]:
        raise ValueError(f"window must be between 1 and {r.shape[0]}, got {window}")

    def windows(a: ArrayLike) -> FloatArray:
        arr = np.asarray(a, dtype=np.float64)
        # (T - w + 1, ..., w) -> (w, T - w + 1, ...): time inside each window on axis 0.
        return np.moveaxis(sliding_window_view(arr, window, axis=0), -1, 0)

    value = measure(windows(r), *(windows(a) for a in args), **kwargs)
    return np.asarray(value, dtype=np.float64)
