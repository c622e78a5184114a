"""Value at risk and expected shortfall (CVaR): historical, parametric normal, Cornish-Fisher,
Monte Carlo; marginal and component VaR per holding.

Conventions:

* ``confidence`` is the probability of *not* losing more than the VaR (0.95, 0.99); the
  tail probability is ``alpha = 1 - confidence``.
* VaR and CVaR are **positive loss fractions** of the position's value (0.021 = a 2.1%
  loss).  empyrical, quantstats and the parametric formulas give the return quantile, a
  negative number: ours is its negation.  riskfolio-lib and skfolio already answer losses.
* ``horizon`` (periods, default 1): the parametric and Cornish-Fisher figures scale the mean
  by ``h`` and the standard deviation by ``sqrt(h)``; the historical ones scale the one-period
  figure by ``sqrt(h)`` (square-root-of-time rule); Monte Carlo compounds ``h`` simulated
  periods.

Historical quantile rules (``method``):

* ``"linear"`` (default): the ``alpha`` quantile with linear interpolation between order
  statistics, ``numpy.percentile`` — empyrical's ``value_at_risk`` and quantstats'.
* ``"lower"``: the order statistic ``x_(ceil(alpha n))`` with no interpolation —
  riskfolio-lib's ``VaR_Hist`` and skfolio's ``value_at_risk``.

Historical CVaR rules (``method``):

* ``"empyrical"`` (default): the mean of the ``floor((n - 1) alpha) + 1`` worst returns
  (empyrical's ``conditional_value_at_risk``);
* ``"tail_mean"``: the mean of the returns at or below the linear quantile (quantstats'
  ``cvar(method="historical")``);
* ``"rockafellar_uryasev"``: ``VaR + E[(loss - VaR)+] / alpha`` with the ``"lower"`` VaR, the
  coherent definition (riskfolio-lib's ``CVaR_Hist``, skfolio's ``cvar``).

Parametric normal: ``VaR = -(mu + sigma z_alpha)``, ``CVaR = -(mu - sigma phi(z_alpha) / alpha)``
with the sample mean and ``ddof=1`` standard deviation (quantstats' ``value_at_risk`` and its
``cvar(method="parametric")``).  Cornish-Fisher replaces ``z_alpha`` by
``z + (z^2 - 1) S / 6 + (z^3 - 3z) K / 24 - (2z^3 - 5z) S^2 / 36`` with the sample skewness S
and excess kurtosis K (population moments, ``scipy.stats.skew/kurtosis`` defaults).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from quantdesk.analytics.returns import FloatArray

__all__ = [
    "ComponentVaR",
    "MonteCarloVaR",
    "component_var",
    "cornish_fisher_var",
    "historical_cvar",
    "historical_var",
    "monte_carlo_var",
    "parametric_cvar",
    "parametric_var",
]

QuantileRule = Literal["linear", "lower"]
ShortfallRule = Literal["empyrical", "tail_mean", "rockafellar_uryasev"]


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return 1.0 - confidence


def _series(returns: ArrayLike) -> FloatArray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 2:
        raise ValueError("VaR needs one series of at least two returns (combine columns first)")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite")
    return r


def _snap(k: float) -> float:
    """``k`` rounded to the nearest integer when it is one up to float error: ``1 - 0.9`` is
    0.09999999999999998, and the tail of 500 returns at 90% must hold 50 of them, not 49."""
    nearest = round(k)
    return float(nearest) if abs(k - nearest) < 1e-9 * max(1.0, k) else k


def _lower_index(n: int, alpha: float) -> int:
    """``ceil(alpha n) - 1`` (riskfolio-lib's index of the VaR order statistic)."""
    return max(0, math.ceil(_snap(alpha * n)) - 1)


def historical_var(
    returns: ArrayLike,
    confidence: float = 0.95,
    *,
    method: QuantileRule = "linear",
    horizon: int = 1,
) -> float:
    """Loss not exceeded with probability ``confidence``, from the empirical distribution."""
    r, alpha = _series(returns), _alpha(confidence)
    if method == "linear":
        quantile = float(np.percentile(r, 100.0 * alpha))
    elif method == "lower":
        quantile = float(np.partition(r, _lower_index(r.size, alpha))[_lower_index(r.size, alpha)])
    else:
        raise ValueError(f"unknown quantile rule {method!r}")
    return -quantile * math.sqrt(horizon)


def historical_cvar(
    returns: ArrayLike,
    confidence: float = 0.95,
    *,
    method: ShortfallRule = "empyrical",
    horizon: int = 1,
) -> float:
    """Expected loss in the worst ``1 - confidence`` of periods (see the module for rules)."""
    r, alpha = _series(returns), _alpha(confidence)
    if method == "empyrical":
        cutoff = math.floor(_snap((r.size - 1) * alpha))
        tail = float(np.mean(np.partition(r, cutoff)[: cutoff + 1]))
    elif method == "tail_mean":
        tail = float(np.mean(r[r <= np.percentile(r, 100.0 * alpha)]))
    elif method == "rockafellar_uryasev":
        ik = _lower_index(r.size, alpha)
        ordered = np.partition(r, ik)
        var = ordered[ik]
        # CVaR = VaR + mean excess loss beyond VaR over alpha (the probability mass).
        tail = float(var + np.sum(ordered[:ik] - var) / (alpha * r.size))
    else:
        raise ValueError(f"unknown shortfall rule {method!r}")
    return -tail * math.sqrt(horizon)


def _moments(r: FloatArray) -> tuple[float, float]:
    return float(np.mean(r)), float(np.std(r, ddof=1))


def parametric_var(returns: ArrayLike, confidence: float = 0.95, *, horizon: int = 1) -> float:
    """Normal VaR with the sample mean and standard deviation: ``-(mu h + sigma sqrt(h) z)``."""
    r, alpha = _series(returns), _alpha(confidence)
    mu, sigma = _moments(r)
    z = float(stats.norm.ppf(alpha))
    return -(mu * horizon + sigma * math.sqrt(horizon) * z)


def parametric_cvar(returns: ArrayLike, confidence: float = 0.95, *, horizon: int = 1) -> float:
    """Normal expected shortfall: ``-(mu h - sigma sqrt(h) phi(z) / alpha)``."""
    r, alpha = _series(returns), _alpha(confidence)
    mu, sigma = _moments(r)
    z = float(stats.norm.ppf(alpha))
    return -(mu * horizon - sigma * math.sqrt(horizon) * float(stats.norm.pdf(z)) / alpha)


def cornish_fisher_var(returns: ArrayLike, confidence: float = 0.95, *, horizon: int = 1) -> float:
    """Modified (Cornish-Fisher) VaR: the normal quantile corrected for skew and fat tails."""
    r, alpha = _series(returns), _alpha(confidence)
    mu, sigma = _moments(r)
    s = float(stats.skew(r))
    k = float(stats.kurtosis(r))  # excess kurtosis
    z = float(stats.norm.ppf(alpha))
    z_cf = (
        z
        + (z * z - 1.0) * s / 6.0
        + (z**3 - 3.0 * z) * k / 24.0
        - (2.0 * z**3 - 5.0 * z) * s * s / 36.0
    )
    return -(mu * horizon + sigma * math.sqrt(horizon) * z_cf)


@dataclass(frozen=True, slots=True)
class MonteCarloVaR:
    var: float
    cvar: float
    simulations: int


def monte_carlo_var(
    mean: ArrayLike,
    cov: ArrayLike,
    weights: ArrayLike,
    confidence: float = 0.95,
    *,
    horizon: int = 1,
    simulations: int = 20_000,
    seed: int = 0,
) -> MonteCarloVaR:
    """VaR and CVaR of a buy-and-hold portfolio over ``horizon`` periods, by simulation.

    Each path draws ``horizon`` periods of multivariate normal simple returns with the given
    per-period ``mean`` and ``cov`` (seeded: the same seed gives the same figures), compounds
    each asset over the path and weights the assets' horizon returns.  VaR is the ``"lower"``
    quantile of the simulated losses and CVaR its Rockafellar-Uryasev shortfall.
    """
    alpha = _alpha(confidence)
    mu = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    w = np.atleast_1d(np.asarray(weights, dtype=np.float64))
    if sigma.shape != (mu.size, mu.size) or w.size != mu.size:
        raise ValueError("mean, cov and weights must describe the same assets")
    if horizon < 1 or simulations < 2:
        raise ValueError("horizon must be >= 1 and simulations >= 2")
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(mu, sigma, size=(simulations, horizon), method="eigh")
    growth = np.prod(1.0 + draws, axis=1) - 1.0  # (simulations, assets)
    pnl = growth @ w
    confidence_ = 1.0 - alpha
    return MonteCarloVaR(
        var=historical_var(pnl, confidence_, method="lower"),
        cvar=historical_cvar(pnl, confidence_, method="rockafellar_uryasev"),
        simulations=simulations,
    )


@dataclass(frozen=True, slots=True)
class ComponentVaR:
    """Parametric VaR of a portfolio split by holding (Euler allocation).

    ``marginal[i]`` is ∂VaR/∂w_i; ``component[i] = w_i * marginal[i]``; the components add up
    to ``var`` exactly (VaR is homogeneous of degree one in the weights).
    """

    var: float
    marginal: FloatArray
    component: FloatArray

    @property
    def percent(self) -> FloatArray:
        """Each holding's share of the VaR (adds up to 1)."""
        result: FloatArray = self.component / self.var
        return result


def component_var(
    weights: ArrayLike,
    cov: ArrayLike,
    mean: ArrayLike | None = None,
    confidence: float = 0.95,
    *,
    horizon: int = 1,
) -> ComponentVaR:
    """Normal VaR of ``w`` with per-period ``cov`` (and ``mean``, zero when omitted):
    ``VaR = -(w'mu h) - z sqrt(h) sqrt(w' Sigma w)``, and per holding the marginal
    ``-mu_i h - z sqrt(h) (Sigma w)_i / sigma_p``."""
    alpha = _alpha(confidence)
    w = np.asarray(weights, dtype=np.float64)
    sigma = np.asarray(cov, dtype=np.float64)
    mu = np.zeros_like(w) if mean is None else np.asarray(mean, dtype=np.float64)
    z = float(stats.norm.ppf(alpha))
    sigma_w = sigma @ w
    sd = math.sqrt(float(w @ sigma_w))
    if sd == 0.0:
        raise ValueError("the portfolio has zero variance")
    marginal = -mu * horizon - z * math.sqrt(horizon) * sigma_w / sd
    component = w * marginal
    return ComponentVaR(var=float(component.sum()), marginal=marginal, component=component)
