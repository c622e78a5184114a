"""A saved strategy marked to market over time: P&L per leg and in total from stored bars,
and the net Greeks along the way.

Pure: closes in, columns out.  The legs' bars are aligned on the union of their times and
each leg's last close is carried forward (a leg with no bar yet at ``t`` is ``None`` there,
and so is the total).  P&L is exact: ``(close - entry) x lots x lot size x multiplier`` in
Decimals.  Greeks of option legs use Black-Scholes-Merton with the volatility implied by
the option's own close at each bar (the leg's saved ``iv`` where the close gives none) and
the underlying's close as spot; futures and the underlying contribute delta.  Without the
underlying's bars the Greeks are ``None``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from quantdesk.analytics.daycount import DAYS_PER_YEAR
from quantdesk.analytics.options import greeks, implied_vol
from quantdesk.trading.engine.positions import tidy

GREEKS = ("delta", "gamma", "vega", "theta")


@dataclass(frozen=True, slots=True)
class MarkedLeg:
    instrument: str
    kind: str  # option, future, equity, index...
    lots: Decimal  # signed
    units_per_lot: Decimal  # lot size x multiplier
    entry: Decimal
    ts: Sequence[int]
    close: Sequence[Decimal]
    option_type: str | None = None
    strike: Decimal | None = None
    expiry: dt.date | None = None
    iv: float | None = None


@dataclass(frozen=True, slots=True)
class Marked:
    t: list[int]
    legs: list[list[Decimal | None]]
    total: list[Decimal | None]
    greeks: dict[str, list[float | None]] | None


def _carried(
    ts: Sequence[int], values: Sequence[Decimal], grid: Sequence[int]
) -> list[Decimal | None]:
    out: list[Decimal | None] = []
    k, last = 0, None
    for t in grid:
        while k < len(ts) and ts[k] <= t:
            last = values[k]
            k += 1
        out.append(last)
    return out


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros or a negative zero: -0.00 is 0, 50.00 is 50."""
    return tidy(value) + 0


def mark(
    legs: Sequence[MarkedLeg],
    underlying: tuple[Sequence[int], Sequence[Decimal]] | None = None,
    r: float = 0.0,
) -> Marked:
    grid = sorted({t for leg in legs for t in leg.ts})
    closes = [_carried(leg.ts, leg.close, grid) for leg in legs]
    pnl: list[list[Decimal | None]] = []
    for leg, column in zip(legs, closes, strict=True):
        size = leg.lots * leg.units_per_lot
        pnl.append([None if c is None else _plain((c - leg.entry) * size) for c in column])
    total: list[Decimal | None] = []
    for row in zip(*pnl, strict=True):
        total.append(None if any(v is None for v in row) else _plain(sum(row, Decimal(0))))
    return Marked(grid, pnl, total, _greeks(legs, closes, grid, underlying, r))


def _greeks(
    legs: Sequence[MarkedLeg], closes: Sequence[Sequence[Decimal | None]], grid: Sequence[int],
    underlying: tuple[Sequence[int], Sequence[Decimal]] | None, r: float,
) -> dict[str, list[float | None]] | None:  # fmt: skip
    if underlying is None or not grid:
        return None
    spot = np.array([np.nan if s is None else float(s) for s in
                     _carried(underlying[0], underlying[1], grid)])  # fmt: skip
    n = len(grid)
    net = {name: np.zeros(n) for name in GREEKS}
    days = np.array([dt.datetime.fromtimestamp(t, dt.UTC).date().toordinal() for t in grid])
    for leg, column in zip(legs, closes, strict=True):
        weight = float(leg.lots * leg.units_per_lot)
        if leg.kind != "option":
            net["delta"] += weight
            continue
        if leg.expiry is None or leg.strike is None:
            raise ValueError(f"{leg.instrument}: an option needs its strike and expiry")
        kind = leg.option_type or "call"
        tau = np.maximum(leg.expiry.toordinal() - days, 0) / DAYS_PER_YEAR
        price = np.array([np.nan if c is None else float(c) for c in column])
        live = (tau > 0) & np.isfinite(price) & np.isfinite(spot)
        sigma = np.full(n, leg.iv if leg.iv is not None else np.nan)
        if live.any():
            solved = implied_vol(price[live], kind, spot[live], float(leg.strike), tau[live], r)
            sigma[live] = np.where(solved.ok, solved.vol, sigma[live])
        usable = live & np.isfinite(sigma)
        if usable.any():
            g = greeks(kind, spot[usable], float(leg.strike), tau[usable], r, sigma[usable])
            for name in GREEKS:
                net[name][usable] += weight * np.asarray(getattr(g, name))
        unknown = ~usable & (tau > 0)
        for name in GREEKS:
            net[name][unknown] = np.nan
    known = np.isfinite(spot)

    def out(values: npt.NDArray[np.float64]) -> list[float | None]:
        return [
            float(v) if ok and np.isfinite(v) else None for v, ok in zip(values, known, strict=True)
        ]

    return {name: out(values) for name, values in net.items()}
