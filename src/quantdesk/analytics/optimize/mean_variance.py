"""Mean-variance optimisation: max Sharpe, min volatility, efficient return/risk, frontier.

The problems are PyPortfolioOpt's (``EfficientFrontier``), written against the same
modelling layer, cvxpy, and solved by the same maintained interior-point solver, Clarabel,
so the weights agree to solver tolerance (tested to 1e-4 and typically 1e-7).  A maintained
conic solver rather than a hand-written QP because bounds, sector limits and the max-Sharpe
transformation are inequality-constrained problems whose active sets a hand-written solver
would have to discover; cvxpy turns them into one standard form and Clarabel solves it with
certificates of infeasibility, so an impossible target answers an error instead of weights.

Problems (``w`` the weights, ``mu`` annual expected returns, ``Sigma`` annual covariance,
``gamma`` the L2 regularisation, ``lo <= w <= hi`` the per-asset bounds, and every group
``g``: ``lower_g <= sum_{i in g} w_i <= upper_g``; weights sum to 1):

* ``min_volatility``: minimise ``w' Sigma w + gamma ||w||^2``;
* ``max_sharpe(rf)``: Cornuejols & Tutuncu's transformation, as PyPortfolioOpt: minimise
  ``y' Sigma y`` over ``y, k`` with ``(mu - rf)' y = 1``, ``sum y = k >= 0`` and every linear
  constraint scaled by ``k``; ``w = y / k``.  L2 regularisation there acts on ``y`` (as in
  PyPortfolioOpt, which warns about it);
* ``efficient_return(target)``: minimise ``w' Sigma w + gamma ||w||^2`` with ``mu' w >= target``;
* ``efficient_risk(target)``: maximise ``mu' w - gamma ||w||^2`` with ``w' Sigma w <= target^2``;
* ``efficient_frontier(n)``: ``efficient_return`` at ``n`` targets evenly spaced from the
  minimum-volatility portfolio's return to the highest attainable return (one compiled
  problem with the target as a parameter, so the points after the first only re-solve).

Long-short: give negative lower bounds (the default is long-only, ``0 <= w <= 1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
from numpy.typing import ArrayLike

from quantdesk.analytics.returns import FloatArray

__all__ = [
    "GroupLimit",
    "MeanVariance",
    "OptimizationError",
    "Portfolio",
    "group_limits",
    "performance",
]

SOLVER = "CLARABEL"


class OptimizationError(ValueError):
    """The problem has no solution (infeasible target or constraints) or the solver failed."""


@dataclass(frozen=True, slots=True)
class GroupLimit:
    """``lower <= sum of the members' weights <= upper`` (a sector limit)."""

    members: tuple[int, ...]
    lower: float = -math.inf
    upper: float = math.inf


@dataclass(frozen=True, slots=True, eq=False)
class Portfolio:
    weights: FloatArray
    expected_return: float
    volatility: float
    sharpe: float


def performance(
    weights: ArrayLike, mu: ArrayLike, cov: ArrayLike, risk_free_rate: float = 0.0
) -> Portfolio:
    """Expected return ``w' mu``, volatility ``sqrt(w' Sigma w)`` and Sharpe
    ``(return - rf) / volatility`` (PyPortfolioOpt's ``portfolio_performance``)."""
    w = np.asarray(weights, dtype=np.float64)
    ret = float(w @ np.asarray(mu, dtype=np.float64))
    vol = math.sqrt(max(float(w @ np.asarray(cov, dtype=np.float64) @ w), 0.0))
    sharpe = (ret - risk_free_rate) / vol if vol > 0 else math.nan
    return Portfolio(weights=w, expected_return=ret, volatility=vol, sharpe=sharpe)


def _bounds(bounds: tuple[float, float] | Sequence[tuple[float, float]], n: int) -> FloatArray:
    if isinstance(bounds, tuple) and len(bounds) == 2 and not isinstance(bounds[0], tuple):
        pairs = np.tile(np.asarray(bounds, dtype=np.float64), (n, 1))
    else:
        pairs = np.asarray(bounds, dtype=np.float64)
    if pairs.shape != (n, 2):
        raise ValueError(f"bounds must be one (lo, hi) pair or one per asset ({n})")
    if np.any(pairs[:, 0] > pairs[:, 1]):
        raise ValueError("a lower bound is above its upper bound")
    if pairs[:, 0].sum() > 1 + 1e-12 or pairs[:, 1].sum() < 1 - 1e-12:
        raise OptimizationError("the bounds leave no way for the weights to sum to 1")
    return pairs


@dataclass(eq=False)
class MeanVariance:
    """Mean-variance problems over one set of assets (build once, solve several objectives)."""

    mu: FloatArray
    cov: FloatArray
    bounds: tuple[float, float] | Sequence[tuple[float, float]] = (0.0, 1.0)
    groups: Sequence[GroupLimit] = ()
    l2_gamma: float = 0.0
    _pairs: FloatArray = field(init=False, repr=False)
    _frontier: tuple[cp.Problem, cp.Variable, cp.Parameter] | None = field(
        init=False, repr=False, default=None
    )

    def __post_init__(self) -> None:
        self.mu = np.asarray(self.mu, dtype=np.float64).ravel()
        self.cov = np.asarray(self.cov, dtype=np.float64)
        n = self.mu.size
        if self.cov.shape != (n, n):
            raise ValueError(f"covariance must be {n}x{n}, got {self.cov.shape}")
        if not (np.all(np.isfinite(self.mu)) and np.all(np.isfinite(self.cov))):
            raise ValueError("expected returns and covariance must be finite")
        if not np.allclose(self.cov, self.cov.T, rtol=0, atol=1e-12):
            raise ValueError("covariance must be symmetric")
        if self.l2_gamma < 0:
            raise ValueError("l2_gamma must be >= 0")
        for g in self.groups:
            if not g.members or min(g.members) < 0 or max(g.members) >= n:
                raise ValueError("a group names an asset that is not in the problem")
        self._pairs = _bounds(self.bounds, n)

    @property
    def n(self) -> int:
        return int(self.mu.size)

    # -- building blocks ---------------------------------------------------------------------
    def _variance(self, w: cp.Variable) -> cp.Expression:
        return cp.quad_form(w, cp.psd_wrap(self.cov))

    def _l2(self, w: cp.Variable) -> cp.Expression | float:
        return self.l2_gamma * cp.sum_squares(w) if self.l2_gamma else 0.0

    def _linear_constraints(self, w: cp.Variable, scale: Any = 1.0) -> list[cp.Constraint]:
        lo, hi = self._pairs[:, 0], self._pairs[:, 1]
        constraints: list[cp.Constraint] = [cp.sum(w) == scale]
        finite_lo, finite_hi = np.isfinite(lo), np.isfinite(hi)
        # Whole-vector constraints when every bound is finite: indexing a cvxpy variable
        # with a mask costs canonicalisation time for nothing.
        if finite_lo.all():
            constraints.append(w >= lo * scale)
        elif finite_lo.any():
            constraints.append(w[finite_lo] >= lo[finite_lo] * scale)
        if finite_hi.all():
            constraints.append(w <= hi * scale)
        elif finite_hi.any():
            constraints.append(w[finite_hi] <= hi[finite_hi] * scale)
        for g in self.groups:
            total = cp.sum(w[list(g.members)])
            if math.isfinite(g.lower):
                constraints.append(total >= g.lower * scale)
            if math.isfinite(g.upper):
                constraints.append(total <= g.upper * scale)
        return constraints

    @staticmethod
    def _solve(problem: cp.Problem, what: str) -> None:
        try:
            problem.solve(solver=SOLVER)
        except (cp.error.SolverError, cp.error.DCPError, ArithmeticError) as exc:
            raise OptimizationError(f"{what}: the solver failed ({exc})") from None
        if problem.status not in ("optimal", "optimal_inaccurate"):
            raise OptimizationError(f"{what}: no solution ({problem.status})")

    def _portfolio(self, weights: Any, risk_free_rate: float) -> Portfolio:
        if weights is None:
            raise OptimizationError("the solver reported a solution without weights")
        w = np.asarray(weights, dtype=np.float64).ravel().round(16) + 0.0
        if not np.all(np.isfinite(w)):
            raise OptimizationError("the solver returned non-finite weights")
        return performance(w, self.mu, self.cov, risk_free_rate)

    # -- objectives --------------------------------------------------------------------------
    def min_volatility(self, risk_free_rate: float = 0.0) -> Portfolio:
        w = cp.Variable(self.n)
        problem = cp.Problem(
            cp.Minimize(self._variance(w) + self._l2(w)), self._linear_constraints(w)
        )
        self._solve(problem, "min_volatility")
        return self._portfolio(w.value, risk_free_rate)

    def max_return(self) -> Portfolio:
        w = cp.Variable(self.n)
        problem = cp.Problem(cp.Maximize(self.mu @ w), self._linear_constraints(w))
        self._solve(problem, "max_return")
        return self._portfolio(w.value, 0.0)

    def max_sharpe(self, risk_free_rate: float = 0.0) -> Portfolio:
        if float(self.mu.max()) <= risk_free_rate:
            raise OptimizationError(
                "max_sharpe: at least one asset must have an expected return above the "
                "risk-free rate"
            )
        y = cp.Variable(self.n)
        k = cp.Variable()
        constraints = [(self.mu - risk_free_rate) @ y == 1, k >= 0]
        constraints += self._linear_constraints(y, k)
        problem = cp.Problem(cp.Minimize(self._variance(y) + self._l2(y)), constraints)
        self._solve(problem, "max_sharpe")
        if k.value is None or y.value is None or not float(k.value) > 0:
            raise OptimizationError("max_sharpe: no portfolio with a positive excess return")
        return self._portfolio(np.asarray(y.value) / float(k.value), risk_free_rate)

    def efficient_return(self, target_return: float, risk_free_rate: float = 0.0) -> Portfolio:
        problem, w, target = self._frontier_problem()
        target.value = target_return
        self._solve(problem, f"efficient_return({target_return:g})")
        return self._portfolio(w.value, risk_free_rate)

    def efficient_risk(self, target_volatility: float, risk_free_rate: float = 0.0) -> Portfolio:
        if target_volatility <= 0:
            raise ValueError("target_volatility must be > 0")
        floor = self.min_volatility().volatility
        if target_volatility < floor - 1e-9:
            raise OptimizationError(
                f"efficient_risk: the lowest attainable volatility is {floor:.6f}"
            )
        w = cp.Variable(self.n)
        constraints = [self._variance(w) <= target_volatility**2, *self._linear_constraints(w)]
        problem = cp.Problem(cp.Maximize(self.mu @ w - self._l2(w)), constraints)
        self._solve(problem, f"efficient_risk({target_volatility:g})")
        return self._portfolio(w.value, risk_free_rate)

    def _frontier_problem(self) -> tuple[cp.Problem, cp.Variable, cp.Parameter]:
        if self._frontier is None:
            w = cp.Variable(self.n)
            target = cp.Parameter()
            constraints = [self.mu @ w >= target, *self._linear_constraints(w)]
            problem = cp.Problem(cp.Minimize(self._variance(w) + self._l2(w)), constraints)
            self._frontier = (problem, w, target)
        return self._frontier

    def efficient_frontier(self, points: int = 50, risk_free_rate: float = 0.0) -> list[Portfolio]:
        """``points`` portfolios from the minimum-volatility one to the highest return."""
        if points < 2:
            raise ValueError("the frontier needs at least two points")
        # The minimum-volatility end from the frontier's own compiled problem: with the
        # target below every attainable return the constraint is slack (one compile saved).
        lo, hi = self._pairs[:, 0] * self.mu, self._pairs[:, 1] * self.mu
        floor = float(np.sum(np.minimum(lo, hi)))
        if math.isfinite(floor):
            first = self.efficient_return(floor - 1.0, risk_free_rate)
        else:  # unbounded weights: no finite slack target
            first = self.min_volatility(risk_free_rate)
        low = first.expected_return
        high = self.max_return().expected_return
        # Just inside the top end: at the maximum itself the target is met by one vertex only
        # and the solver reports it inaccurately (PyPortfolioOpt's plot stops 1e-4 short).
        high = max(low, high - 1e-9 * max(1.0, abs(high)))
        targets = np.linspace(low, high, points)
        return [first, *(self.efficient_return(float(t), risk_free_rate) for t in targets[1:])]


def group_limits(
    sectors: Mapping[str, str],
    assets: Sequence[str],
    lower: Mapping[str, float] | None = None,
    upper: Mapping[str, float] | None = None,
) -> list[GroupLimit]:
    """Group limits from an asset -> sector map and sector -> limit maps (PyPortfolioOpt's
    ``add_sector_constraints`` arguments)."""
    position = {a: i for i, a in enumerate(assets)}
    unknown = sorted(set(sectors) - set(position))
    if unknown:
        raise ValueError(f"sectors name unknown assets: {', '.join(unknown)}")
    lower, upper = lower or {}, upper or {}
    limits = []
    for sector in sorted(set(lower) | set(upper)):
        members = tuple(position[a] for a, s in sectors.items() if s == sector)
        if not members:
            raise ValueError(f"no asset is in sector {sector!r}")
        limits.append(
            GroupLimit(members, lower.get(sector, -math.inf), upper.get(sector, math.inf))
        )
    return limits
