"""Discrete allocation: whole shares (or whole lots) per asset for a portfolio value.

PyPortfolioOpt's greedy algorithm (``DiscreteAllocation.greedy_portfolio``), with lot sizes:
an asset trades in multiples of its ``lot`` (NSE F&O lots, or 1 for cash equities), so a
"unit" costs ``price x lot``.

1. Assets sorted by weight, largest first; each gets ``floor(weight x value / unit cost)``
   units.
2. While cash remains: buy one more unit of the affordable asset whose weight falls furthest
   short of its target (``target - held value / total held value``); stop when no
   affordable asset is short of its target.

PyPortfolioOpt gives up after skipping ten unaffordable assets in a row; here every asset is
considered, so with many expensive assets quantdesk may spend a little more of the cash.
With shorts, the longs and the shorts are allocated separately as PyPortfolioOpt does: the
longs over ``value``, the shorts over ``value x short_ratio`` (default: the sum of the
negative weights), and the short sale proceeds are not reinvested.

Money is ``Decimal`` (prices, value, leftover cash), as everywhere money is; weights are
floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import numpy as np

__all__ = ["Allocation", "discrete_allocation"]


@dataclass(frozen=True, slots=True)
class Allocation:
    quantities: dict[str, int]
    """Signed number of shares (units of the underlying, i.e. lots x lot size) per asset."""
    lots: dict[str, int]
    """Signed number of lots per asset (equal to ``quantities`` where the lot is 1)."""
    leftover: Decimal
    """Cash not invested (long leg plus short leg)."""


def _whole_units(units: Decimal) -> tuple[int, bool]:
    """``floor(units)``, except that a quotient within float error below a whole number is
    that number (and says so).  Weights are floats: a weight of 2/3 arrives as
    0.6666666666666666, and 2/3 of 15,000 at 50 a share is 200 shares, not 199 with 50 left
    idle (the greedy second round sees no deficit to fill).  PyPortfolioOpt, in float
    arithmetic, rounds the product to 200 too."""
    nearest = units.to_integral_value()
    if nearest > units and nearest - units < Decimal("1e-9") * max(Decimal(1), nearest):
        return int(nearest), True
    return int(units.to_integral_value(ROUND_FLOOR)), False


def _greedy(
    weights: Mapping[str, float],
    prices: Mapping[str, Decimal],
    lots: Mapping[str, int],
    value: Decimal,
) -> tuple[dict[str, int], Decimal]:
    order = sorted(weights.items(), key=lambda item: item[1], reverse=True)
    names = [name for name, _ in order]
    target = np.array([w for _, w in order], dtype=np.float64)
    unit_cost = [prices[name] * lots.get(name, 1) for name in names]
    held = [0] * len(names)
    snapped: list[int] = []
    cash = value
    for i, (_, weight) in enumerate(order):
        units, up = _whole_units(Decimal(weight) * value / unit_cost[i])
        held[i] = max(units, 0)
        if up and held[i]:
            snapped.append(i)
        cash -= held[i] * unit_cost[i]
    while cash < 0 and snapped:  # a snap overspent by float dust: give those units back
        i = snapped.pop()
        held[i] -= 1
        cash += unit_cost[i]
    costs = np.array([float(c) for c in unit_cost])
    while cash > 0:
        spent = costs * np.array(held, dtype=np.float64)
        total = spent.sum()
        current = spent / total if total > 0 else np.zeros_like(spent)
        deficit = target - current
        affordable = np.array([c <= cash for c in unit_cost])
        if not affordable.any():
            break
        deficit = np.where(affordable, deficit, -np.inf)
        i = int(np.argmax(deficit))
        if deficit[i] <= 0:
            break
        held[i] += 1
        cash -= unit_cost[i]
    return {name: n for name, n in zip(names, held, strict=True) if n}, cash


def discrete_allocation(
    weights: Mapping[str, float],
    prices: Mapping[str, Decimal],
    value: Decimal,
    *,
    lot_sizes: Mapping[str, int] | None = None,
    short_ratio: float | None = None,
) -> Allocation:
    """Whole lots per asset for ``value`` of cash at the latest ``prices`` (per unit)."""
    if value <= 0:
        raise ValueError("the portfolio value must be > 0")
    missing = sorted(set(weights) - set(prices))
    if missing:
        raise ValueError(f"no latest price for {', '.join(missing)}")
    if any(prices[name] <= 0 for name in weights):
        raise ValueError("latest prices must be > 0")
    lots = {name: int((lot_sizes or {}).get(name, 1)) for name in weights}
    if any(size < 1 for size in lots.values()):
        raise ValueError("lot sizes must be >= 1")
    longs = {n: w for n, w in weights.items() if w > 0}
    shorts = {n: -w for n, w in weights.items() if w < 0}
    lot_counts: dict[str, int] = {}
    leftover = Decimal(0)
    if longs:
        total = sum(longs.values())
        held, cash = _greedy({n: w / total for n, w in longs.items()}, prices, lots, value)
        lot_counts.update(held)
        leftover += cash
    if shorts:
        total = sum(shorts.values())
        ratio = total if short_ratio is None else short_ratio
        # The ratio as written (0.3, not 0.29999999999999998889...): 30% of 30,000 is 9,000.
        short_value = value * Decimal(repr(float(ratio)))
        held, cash = _greedy({n: w / total for n, w in shorts.items()}, prices, lots, short_value)
        lot_counts.update({n: -k for n, k in held.items()})
        leftover += cash
    return Allocation(
        quantities={n: k * lots[n] for n, k in lot_counts.items()},
        lots=lot_counts,
        leftover=leftover,
    )
