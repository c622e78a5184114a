"""Breakevens, maximum profit and loss, and probability of profit of a P/L curve.

Breakevens are roots, never grid samples:

* When every option expires at the horizon (any expiry-day curve without a calendar), the
  P/L is piecewise linear in the underlying with kinks at the strikes.  Each root between
  two kinks, or on the outer ray past the last strike, is found by linear interpolation,
  polished with one Newton step on that segment's slope.
* Otherwise (a calendar at the near expiry, any T+n curve) the P/L is smooth: it is sampled
  on a grid reaching many standard deviations past the strikes, each sign change is refined
  with :func:`scipy.optimize.brentq` to ``xtol = 1e-10``, and past the grid the curve is
  already its straight asymptote, whose root is bracketed by doubling.  Two roots inside one
  grid cell (a curve that only grazes zero) can be missed; cells are at most 0.05 standard
  deviations wide near each strike (see ``_search_grid``).

Max profit and max loss use the same split: kinks plus the value at ``S = 0`` (the price
floor) in the linear case; the grid, refined around its best and worst point with
:func:`scipy.optimize.minimize_scalar`, in the smooth case.  In both, the slope of the upper
asymptote decides whether the upside is unbounded (net long calls/futures/underlying →
unlimited profit, net short → unlimited loss).  Unbounded values are ``math.inf`` /
``-math.inf`` with an explicit flag beside them, because JSON has no infinity.

Probability of profit integrates the lognormal density of ``S`` at the horizon over the
intervals between breakevens where the P/L is positive: a sum of differences of normal CDFs
of ``ln S``, exact up to the breakevens' own accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import ndtr

from quantdesk.analytics.strategies.valuation import FloatArray, PnLCurve

BREAKEVEN_XTOL: Final = 1e-10
"""Absolute tolerance on a breakeven price found by root bracketing."""

_GRID_CELLS: Final = 2000
_CELLS_PER_LEG: Final = 400
_TAIL_CELLS: Final = 200
# Past K·e^{10σ√τ} for every live option, N(d1) and N(d2) are 1 to double precision, so the
# curve is its asymptote there; likewise below K·e^{−10σ√τ}.
_TAIL_STDEVS: Final = 10.0


@dataclass(frozen=True, slots=True)
class Extremes:
    """The best and worst P/L over all prices ``S ≥ 0`` at the horizon.

    ``max_loss`` is the *lowest P/L*, signed: −1,250.0 means a loss of at most 1,250.
    Unbounded sides are ``math.inf`` / ``-math.inf`` and set the matching flag.  A bound
    approached only as ``S → ∞`` is reported as that limit: the search grid reaches so far
    past the strikes that the curve has met its asymptote to double precision there.
    """

    max_profit: float
    max_loss: float
    unlimited_profit: bool
    unlimited_loss: bool


@dataclass(frozen=True, slots=True)
class ScalarPnL:
    """The curve as a float → float function, for SciPy's scalar solvers."""

    curve: PnLCurve

    def __call__(self, spot: float) -> float:
        return float(self.curve(spot))


def _search_grid(curve: PnLCurve) -> FloatArray:
    """Prices from 0 to where a smooth curve has become its asymptote, fine near each strike.

    Three layers: an even grid over ``[0, 4 × scale]`` (strikes, entry prices); for each live
    option, a grid even in ``ln S`` over ±10 standard deviations of its strike, 0.05 σ√τ apart
    (where its time value, and so any root or extremum it causes, lives); and a geometric
    tail out to the last of those.  One even grid out to the tail would be far too coarse
    near the strikes for a long-dated, high-vol leg.
    """
    t = curve.table
    alive = t.is_option & (curve.remaining > 0)
    top = 4.0 * curve.scale
    parts = [np.linspace(0.0, top, _GRID_CELLS + 1), t.strike[t.is_option]]
    stdev = t.iv[alive] * np.sqrt(curve.remaining[alive])
    if stdev.size:
        steps = np.linspace(-_TAIL_STDEVS, _TAIL_STDEVS, _CELLS_PER_LEG + 1)
        parts.append(
            (t.strike[alive][:, np.newaxis] * np.exp(stdev[:, np.newaxis] * steps)).ravel()
        )
        tail = float(np.max(t.strike[alive] * np.exp(_TAIL_STDEVS * stdev)))
        if tail > top:
            parts.append(np.geomspace(top, tail, _TAIL_CELLS + 1))
    return np.unique(np.concatenate(parts))


def _linear_nodes(curve: PnLCurve) -> FloatArray:
    kinks = curve.kinks
    return np.concatenate([[0.0], kinks[kinks > 0]])


def _linear_breakevens(curve: PnLCurve) -> list[float]:
    nodes = _linear_nodes(curve)
    f = curve(nodes)
    roots = list(nodes[f == 0.0])
    a, b, fa, fb = nodes[:-1], nodes[1:], f[:-1], f[1:]
    crossing = fa * fb < 0
    if np.any(crossing):
        a, b, fa, fb = a[crossing], b[crossing], fa[crossing], fb[crossing]
        slope = (fb - fa) / (b - a)
        guess = a - fa / slope
        # One Newton step on the exact segment slope removes the interpolation's rounding.
        polished = np.clip(guess - curve(guess) / slope, a, b)
        roots.extend(polished.tolist())
    slope_up, _ = curve.upper_asymptote()
    if slope_up != 0.0 and f[-1] * slope_up < 0:
        guess = nodes[-1] - f[-1] / slope_up
        roots.append(float(guess - curve(guess) / slope_up))
    return roots


def _smooth_breakevens(curve: PnLCurve) -> list[float]:
    grid = _search_grid(curve)
    f = curve(grid)
    fn = ScalarPnL(curve)
    roots = list(grid[f == 0.0])
    for i in np.flatnonzero(f[:-1] * f[1:] < 0):
        roots.append(brentq(fn, grid[i], grid[i + 1], xtol=BREAKEVEN_XTOL))
    slope_up, _ = curve.upper_asymptote()
    if slope_up != 0.0 and f[-1] * slope_up < 0:
        lo, hi = float(grid[-1]), 2.0 * float(grid[-1])
        while fn(hi) * slope_up < 0:  # the asymptote guarantees a crossing within ~|f/slope|
            lo, hi = hi, 2.0 * hi
        roots.append(brentq(fn, lo, hi, xtol=BREAKEVEN_XTOL))
    return roots


def breakevens(curve: PnLCurve) -> tuple[float, ...]:
    """Sorted underlying prices at the horizon where the P/L is zero.

    Where the P/L is exactly zero over a whole interval, the interval's ends are reported.
    """
    roots = _linear_breakevens(curve) if curve.is_piecewise_linear else _smooth_breakevens(curve)
    out: list[float] = []
    for x in sorted(roots):
        if not out or x - out[-1] > BREAKEVEN_XTOL * max(1.0, x):
            out.append(float(x))
    return tuple(out)


def _refine(curve: PnLCurve, grid: FloatArray, i: int, sign: float) -> float:
    """Best P/L (``sign=+1``) or worst (``-1``) near grid point ``i``, by bounded search."""
    here = float(curve(grid[i]))
    lo, hi = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, grid.size - 1)])
    fn = ScalarPnL(curve)
    found = minimize_scalar(
        lambda x: -sign * fn(x), bounds=(lo, hi), method="bounded", options={"xatol": 1e-9 * hi}
    )
    candidate = -sign * float(found.fun)
    return max(here, candidate) if sign > 0 else min(here, candidate)


def extremes(curve: PnLCurve) -> Extremes:
    """Maximum profit and maximum loss of the curve over ``S ≥ 0``."""
    slope_up, _ = curve.upper_asymptote()
    if curve.is_piecewise_linear:
        values = curve(_linear_nodes(curve))
        best, worst = float(values.max()), float(values.min())
    else:
        grid = _search_grid(curve)
        values = curve(grid)
        best = max(float(values.max()), _refine(curve, grid, int(values.argmax()), 1.0))
        worst = min(float(values.min()), _refine(curve, grid, int(values.argmin()), -1.0))
    return Extremes(
        max_profit=math.inf if slope_up > 0 else best,
        max_loss=-math.inf if slope_up < 0 else worst,
        unlimited_profit=slope_up > 0,
        unlimited_loss=slope_up < 0,
    )


def probability_of_profit(
    curve: PnLCurve,
    spot: float,
    vol: float,
    *,
    drift: float | None = None,
    roots: Sequence[float] | None = None,
) -> float:
    """Probability that the P/L at the horizon is > 0 when ``S`` is lognormal.

    ``ln S_h ~ N(ln spot + (μ − σ²/2)·h, σ²·h)`` with ``μ = drift``, by default the
    risk-neutral ``r − q`` of the curve, and ``σ = vol``.

    Args:
        curve: the P/L curve (its horizon ``h`` is the time over which ``S`` diffuses).
        spot: the underlying price today.
        vol: annual volatility of the underlying.
        drift: annual drift μ of the underlying; ``None`` for ``r − q``.
        roots: the curve's :func:`breakevens`, if already at hand (they are found otherwise).
    """
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"spot must be > 0, got {spot!r}")
    if not (math.isfinite(vol) and vol >= 0):
        raise ValueError(f"vol must be >= 0, got {vol!r}")
    mu = curve.r - curve.q if drift is None else drift
    if not math.isfinite(mu):
        raise ValueError(f"drift must be finite, got {drift!r}")
    h = curve.horizon
    stdev = vol * math.sqrt(h)
    if stdev == 0.0:
        return 1.0 if float(curve(spot * math.exp(mu * h))) > 0 else 0.0
    b = np.array(breakevens(curve) if roots is None else sorted(roots), dtype=np.float64)
    if b.size == 0:
        return 1.0 if float(curve(spot)) > 0 else 0.0
    # One price strictly inside each interval between breakevens tells the sign there.
    inside = np.concatenate([[b[0] / 2], (b[:-1] + b[1:]) / 2, [2 * b[-1] + 1]])
    profitable = curve(inside) > 0
    with np.errstate(divide="ignore"):  # ln 0 = −inf is the lower edge, as intended
        log_edges = np.log(np.concatenate([[0.0], b, [math.inf]]))
    z = (log_edges - (math.log(spot) + (mu - 0.5 * vol * vol) * h)) / stdev
    cdf = ndtr(z)
    return float(np.clip(np.sum(np.diff(cdf)[profitable]), 0.0, 1.0))
