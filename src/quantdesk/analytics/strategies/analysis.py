"""``analyze``: everything a strategy screen shows, in one serialisable result.

This is what ``POST /api/v1/analytics/strategies/analyze`` calls.  Inputs are legs and
floats; the result is a frozen dataclass of floats, tuples and booleans (and the
:class:`~quantdesk.analytics.strategies.valuation.NetGreeks` dataclass), so it serialises
as is.  Unbounded max profit/loss are ``math.inf``/``-math.inf`` with a flag beside them;
JSON encoders that refuse infinity should write ``null`` and let clients read the flag.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from quantdesk.analytics.strategies.legs import Leg, OptionLeg
from quantdesk.analytics.strategies.payoff import breakevens, extremes, probability_of_profit
from quantdesk.analytics.strategies.valuation import (
    EXPIRY_TOLERANCE,
    FloatArray,
    NetGreeks,
    net_greeks,
    pnl_curve,
)

# Default chart: ±4 standard deviations of the underlying by expiry around the spot, widened
# to show every strike with a 10% margin.
_CHART_STDEVS = 4.0
_CHART_MARGIN = 0.10


@dataclass(frozen=True, slots=True)
class StrategyAnalysis:
    """Payoff curves and risk figures of a multi-leg position.

    Prices and P/L are in the underlying's currency for the whole position (quantity × lot
    size included).  ``expiry`` is the first expiry in years from valuation; the expiry
    curve, breakevens, max profit/loss and POP are all at that moment (for a calendar, with
    the far legs valued by Black-Scholes at their remaining time).
    """

    spot: float
    expiry: float
    grid: tuple[float, ...]
    expiry_pnl: tuple[float, ...]
    today_pnl: tuple[float, ...]
    horizon: float | None
    horizon_pnl: tuple[float, ...] | None
    breakevens: tuple[float, ...]
    max_profit: float
    max_loss: float
    unlimited_profit: bool
    unlimited_loss: bool
    probability_of_profit: float | None
    pop_vol: float | None
    net_premium: float
    net_greeks: NetGreeks


def default_pop_vol(legs: Sequence[Leg], spot: float) -> float | None:
    """IV of the first-expiring option struck nearest the spot (the at-the-money vol).

    Strikes equally near (an iron condor centred on the spot) share it: their IVs are averaged.
    """
    options = [leg for leg in legs if isinstance(leg, OptionLeg)]
    if not options:
        return None
    near = min(leg.expiry for leg in options)
    front = [leg for leg in options if leg.expiry - near <= EXPIRY_TOLERANCE]
    distance = min(abs(leg.strike - spot) for leg in front)
    nearest = [leg.iv for leg in front if abs(leg.strike - spot) == distance]
    return math.fsum(nearest) / len(nearest)


def chart_grid(
    legs: Sequence[Leg], spot: float, vol: float | None, expiry: float, points: int
) -> FloatArray:
    """An evenly spaced price grid around ``spot`` covering every strike."""
    stdev = (vol or 0.0) * math.sqrt(expiry)
    lo = spot * math.exp(-_CHART_STDEVS * stdev)
    hi = spot * math.exp(_CHART_STDEVS * stdev)
    strikes = [leg.strike for leg in legs if isinstance(leg, OptionLeg)]
    lo = min([lo, spot * (1 - _CHART_MARGIN), *(k * (1 - _CHART_MARGIN) for k in strikes)])
    hi = max([hi, spot * (1 + _CHART_MARGIN), *(k * (1 + _CHART_MARGIN) for k in strikes)])
    return np.linspace(lo, hi, points)


def _floats(values: FloatArray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def analyze(
    legs: Sequence[Leg],
    spot: float,
    *,
    r: float = 0.0,
    q: float = 0.0,
    pop_vol: float | None = None,
    pop_drift: float | None = None,
    grid: Sequence[float] | None = None,
    grid_points: int = 201,
    horizon: float | None = None,
) -> StrategyAnalysis:
    """Analyse a position at the underlying price ``spot`` today.

    Args:
        legs: the position.
        spot: the underlying price now.
        r: continuously compounded risk-free rate.
        q: continuous dividend yield.
        pop_vol: volatility for the probability of profit; by default the IV of the
            first-expiring option struck nearest ``spot``.  With no options and no
            ``pop_vol``, POP is ``None``.
        pop_drift: drift for the POP; ``None`` for the risk-neutral ``r − q``.
        grid: the chart's prices; by default ``grid_points`` evenly spaced prices spanning
            ±4 standard deviations and every strike.  Strikes and breakevens inside the
            range (and the spot) are always added, so the expiry curve's kinks are drawn exactly.
        grid_points: number of points of the default grid.
        horizon: years from now of an extra "T+n" curve (``horizon_pnl``), if wanted.
    """
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"spot must be > 0, got {spot!r}")
    if grid is None and grid_points < 2:
        raise ValueError(f"grid_points must be >= 2, got {grid_points!r}")
    at_expiry = pnl_curve(legs, r=r, q=q)
    today = pnl_curve(legs, horizon=0.0, r=r, q=q)
    roots = breakevens(at_expiry)
    bounds = extremes(at_expiry)
    vol = default_pop_vol(legs, spot) if pop_vol is None else pop_vol
    pop = (
        None
        if vol is None
        else probability_of_profit(at_expiry, spot, vol, drift=pop_drift, roots=roots)
    )

    base = (
        chart_grid(legs, spot, vol, at_expiry.horizon, grid_points)
        if grid is None
        else np.asarray(grid, dtype=np.float64)
    )
    if base.ndim != 1 or base.size == 0:
        raise ValueError("grid must be a non-empty list of prices")
    lo, hi = float(base.min()), float(base.max())
    strikes = [leg.strike for leg in legs if isinstance(leg, OptionLeg)]
    extra = np.array([x for x in (spot, *strikes, *roots) if lo <= x <= hi], dtype=np.float64)
    prices = np.unique(np.concatenate([base, extra]))

    horizon_pnl = None
    if horizon is not None:
        horizon_pnl = _floats(pnl_curve(legs, horizon=horizon, r=r, q=q)(prices))
    premium = math.fsum(
        leg.entry_price * leg.quantity * leg.lot_size for leg in legs if isinstance(leg, OptionLeg)
    )
    return StrategyAnalysis(
        spot=float(spot),
        expiry=at_expiry.horizon,
        grid=_floats(prices),
        expiry_pnl=_floats(at_expiry(prices)),
        today_pnl=_floats(today(prices)),
        horizon=horizon,
        horizon_pnl=horizon_pnl,
        breakevens=roots,
        max_profit=bounds.max_profit,
        max_loss=bounds.max_loss,
        unlimited_profit=bounds.unlimited_profit,
        unlimited_loss=bounds.unlimited_loss,
        probability_of_profit=pop,
        pop_vol=vol,
        net_premium=premium,
        net_greeks=net_greeks(legs, spot, r=r, q=q),
    )
