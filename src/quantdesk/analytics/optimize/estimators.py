"""Expected returns and covariance matrices from daily returns, annualised.

Conventions (PyPortfolioOpt's, to 1e-12 on the same inputs):

* inputs are simple daily returns, ``(T, N)``, time on axis 0; outputs are annual
  (``periods_per_year`` = 252);
* ``mean_historical``: the arithmetic mean x 252 (PyPortfolioOpt's
  ``mean_historical_return(..., compounding=False)``; with ``compounding=True``, its default,
  the CAGR ``prod(1 + r)^(252 / T) - 1``);
* ``ema_historical``: pandas' ``ewm(span, adjust=True)`` mean at the last day x 252;
* ``capm``: ``rf + beta_i (E[R_m] - rf)`` with betas from the sample covariance against the
  market (the equal-weighted mean of the assets when none is given), ``E[R_m]`` the market's
  arithmetic mean x 252 (or CAGR with ``compounding=True``);
* ``sample_cov``: ``cov(ddof=1) x 252``;
* ``exp_cov``: PyPortfolioOpt's ``exp_cov``: the exponentially weighted mean (``span``,
  adjust=True) of ``(x - mean x)(y - mean y)`` with *full-sample* means, x 252;
* ``ledoit_wolf``: shrinkage of the ``ddof=0`` covariance of the centred returns towards
  ``mu I`` (constant variance) with the Ledoit-Wolf (2004) optimal intensity, x 252 —
  scikit-learn's ``ledoit_wolf``, which PyPortfolioOpt's ``CovarianceShrinkage.ledoit_wolf()``
  calls.  Written here (a dozen lines of the published formula) rather than making
  scikit-learn a runtime dependency of the service for one function.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from quantdesk.analytics.returns import TRADING_DAYS, FloatArray

__all__ = [
    "capm",
    "covariance",
    "ema_historical",
    "exp_cov",
    "expected_returns",
    "ledoit_wolf",
    "mean_historical",
    "sample_cov",
]

ReturnModel = Literal["mean_historical", "ema_historical", "capm"]
RiskModel = Literal["sample", "exp_cov", "ledoit_wolf"]


def _matrix(returns: ArrayLike) -> FloatArray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 1:
        raise ValueError("need a (days x assets) array with at least two days")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite")
    return r


def _ewm_weights(n: int, span: float) -> FloatArray:
    if span < 1:
        raise ValueError("span must be >= 1")
    alpha = 2.0 / (span + 1.0)
    # adjust=True: weight (1 - alpha)^age, the newest row has age 0.
    weights = (1.0 - alpha) ** np.arange(n - 1, -1, -1, dtype=np.float64)
    result: FloatArray = weights / weights.sum()
    return result


def mean_historical(
    returns: ArrayLike, *, compounding: bool = False, periods_per_year: float = TRADING_DAYS
) -> FloatArray:
    r = _matrix(returns)
    if compounding:
        result: FloatArray = np.prod(1.0 + r, axis=0) ** (periods_per_year / r.shape[0]) - 1.0
        return result
    return np.asarray(r.mean(axis=0) * periods_per_year)


def ema_historical(
    returns: ArrayLike,
    *,
    span: float = 500,
    compounding: bool = False,
    periods_per_year: float = TRADING_DAYS,
) -> FloatArray:
    r = _matrix(returns)
    mean = _ewm_weights(r.shape[0], span) @ r
    if compounding:
        result: FloatArray = (1.0 + mean) ** periods_per_year - 1.0
        return result
    return np.asarray(mean * periods_per_year)


def capm(
    returns: ArrayLike,
    market: ArrayLike | None = None,
    *,
    risk_free_rate: float = 0.0,
    compounding: bool = False,
    periods_per_year: float = TRADING_DAYS,
) -> FloatArray:
    r = _matrix(returns)
    m = r.mean(axis=1) if market is None else np.asarray(market, dtype=np.float64).ravel()
    if m.shape[0] != r.shape[0]:
        raise ValueError("the market series must cover the same days as the returns")
    dm = m - m.mean()
    betas = ((r - r.mean(axis=0)).T @ dm) / (dm @ dm)
    if compounding:
        market_return = float(np.prod(1.0 + m) ** (periods_per_year / m.shape[0]) - 1.0)
    else:
        market_return = float(m.mean() * periods_per_year)
    return np.asarray(risk_free_rate + betas * (market_return - risk_free_rate))


def sample_cov(returns: ArrayLike, *, periods_per_year: float = TRADING_DAYS) -> FloatArray:
    r = _matrix(returns)
    return np.atleast_2d(np.cov(r, rowvar=False, ddof=1)) * periods_per_year


def exp_cov(
    returns: ArrayLike, *, span: float = 180, periods_per_year: float = TRADING_DAYS
) -> FloatArray:
    r = _matrix(returns)
    centred = r - r.mean(axis=0)
    w = _ewm_weights(r.shape[0], span)
    result: FloatArray = (centred * w[:, None]).T @ centred * periods_per_year
    return result


def ledoit_wolf(
    returns: ArrayLike, *, periods_per_year: float = TRADING_DAYS
) -> tuple[FloatArray, float]:
    """The shrunk annual covariance and the shrinkage intensity in [0, 1]."""
    X = _matrix(returns)
    X = X - X.mean(axis=0)
    n, p = X.shape
    emp_cov = X.T @ X / n
    X2 = X * X
    trace_terms = X2.sum(axis=0) / n
    mu = float(trace_terms.sum() / p)
    beta_ = float(np.sum(X2.T @ X2))
    delta_ = float(np.sum(emp_cov * emp_cov))  # = sum((X'X)^2) / n^2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * float(trace_terms.sum()) + p * mu * mu) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    shrunk = (1.0 - shrinkage) * emp_cov
    shrunk.flat[:: p + 1] += shrinkage * mu
    return shrunk * periods_per_year, shrinkage


def expected_returns(
    returns: ArrayLike,
    model: ReturnModel = "mean_historical",
    *,
    span: float = 500,
    market: ArrayLike | None = None,
    risk_free_rate: float = 0.0,
    compounding: bool = False,
    periods_per_year: float = TRADING_DAYS,
) -> FloatArray:
    """Annual expected returns by ``model`` (see the module for each definition)."""
    if model == "mean_historical":
        return mean_historical(returns, compounding=compounding, periods_per_year=periods_per_year)
    if model == "ema_historical":
        return ema_historical(
            returns, span=span, compounding=compounding, periods_per_year=periods_per_year
        )
    if model == "capm":
        return capm(
            returns,
            market,
            risk_free_rate=risk_free_rate,
            compounding=compounding,
            periods_per_year=periods_per_year,
        )
    raise ValueError(f"unknown expected-return model {model!r}")


def covariance(
    returns: ArrayLike,
    model: RiskModel = "sample",
    *,
    span: float = 180,
    periods_per_year: float = TRADING_DAYS,
) -> FloatArray:
    """Annual covariance by ``model`` (see the module for each definition)."""
    if model == "sample":
        return sample_cov(returns, periods_per_year=periods_per_year)
    if model == "exp_cov":
        return exp_cov(returns, span=span, periods_per_year=periods_per_year)
    if model == "ledoit_wolf":
        return ledoit_wolf(returns, periods_per_year=periods_per_year)[0]
    raise ValueError(f"unknown covariance model {model!r}")
