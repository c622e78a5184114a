"""Portfolio optimisation (pure): estimators, mean-variance, risk parity, HRP, allocation.

``from quantdesk.analytics import optimize`` then ``optimize.MeanVariance(mu, cov).max_sharpe()``,
``optimize.risk_parity(cov)``, ``optimize.hrp(returns)``; see ``docs/risk.md``.
"""

from quantdesk.analytics.optimize.allocation import Allocation, discrete_allocation
from quantdesk.analytics.optimize.estimators import (
    capm,
    covariance,
    ema_historical,
    exp_cov,
    expected_returns,
    ledoit_wolf,
    mean_historical,
    sample_cov,
)
from quantdesk.analytics.optimize.mean_variance import (
    GroupLimit,
    MeanVariance,
    OptimizationError,
    Portfolio,
    group_limits,
    performance,
)
from quantdesk.analytics.optimize.parity import HRP, hrp, risk_contributions, risk_parity

__all__ = [
    "HRP",
    "Allocation",
    "GroupLimit",
    "MeanVariance",
    "OptimizationError",
    "Portfolio",
    "capm",
    "covariance",
    "discrete_allocation",
    "ema_historical",
    "exp_cov",
    "expected_returns",
    "group_limits",
    "hrp",
    "ledoit_wolf",
    "mean_historical",
    "performance",
    "risk_contributions",
    "risk_parity",
    "sample_cov",
]
