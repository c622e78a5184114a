"""Strategy legs: options, futures and the underlying, as frozen dataclasses of floats.

Conventions (the same for every leg type):

* ``quantity`` is in lots and signed: ``+1`` is one lot long, ``-2`` two lots short.
* ``lot_size`` is the contract multiplier (NIFTY options: 75 since 2024-11; US equity
  options: 100; the underlying itself: usually 1).  A leg's *weight* is
  ``quantity * lot_size``: the number of units of the underlying its P/L moves with.
* ``entry_price`` is per unit (the premium or price as quoted), not per lot.
* ``expiry`` is a year fraction from the valuation date ("today" is ``t = 0``).  Build a leg
  from calendar dates with :meth:`OptionLeg.on_dates` / :meth:`FutureLeg.on_dates`, which use
  ACT/365 Fixed (:func:`year_fraction`), the day count NSE uses for its option Greeks.

Prices are floats here; the HTTP layer converts ``Decimal`` at the edge.  Invalid legs raise
``ValueError`` when constructed, as the option pricers do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from quantdesk.analytics.daycount import DAYS_PER_YEAR

OptionKind = Literal["call", "put"]

"""ACT/365 Fixed: calendar days over 365, the convention of NSE's published Greeks."""


def year_fraction(expiry: date, valuation: date) -> float:
    """Return the ACT/365 Fixed year fraction from ``valuation`` to ``expiry``."""
    return (expiry - valuation).days / DAYS_PER_YEAR


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_common(quantity: float, lot_size: float, entry_price: float) -> None:
    _require(math.isfinite(quantity), f"quantity must be finite, got {quantity!r}")
    _require(math.isfinite(lot_size) and lot_size > 0, f"lot_size must be > 0, got {lot_size!r}")
    _require(
        math.isfinite(entry_price) and entry_price >= 0,
        f"entry_price must be finite and >= 0, got {entry_price!r}",
    )


@dataclass(frozen=True, slots=True)
class OptionLeg:
    """A European call or put on the underlying, valued with Black-Scholes-Merton at ``iv``."""

    kind: OptionKind
    strike: float
    expiry: float
    iv: float
    quantity: float
    entry_price: float
    lot_size: float = 1.0

    def __post_init__(self) -> None:
        _require(self.kind in ("call", "put"), f"kind must be 'call' or 'put', got {self.kind!r}")
        _require(
            math.isfinite(self.strike) and self.strike > 0, f"strike must be > 0: {self.strike!r}"
        )
        _require(
            math.isfinite(self.expiry) and self.expiry > 0,
            f"option expiry must be > 0 years after valuation, got {self.expiry!r}",
        )
        _require(math.isfinite(self.iv) and self.iv > 0, f"iv must be > 0, got {self.iv!r}")
        _check_common(self.quantity, self.lot_size, self.entry_price)

    @classmethod
    def on_dates(
        cls,
        kind: OptionKind,
        strike: float,
        *,
        expiry: date,
        valuation: date,
        iv: float,
        quantity: float,
        entry_price: float,
        lot_size: float = 1.0,
    ) -> OptionLeg:
        """Build a leg whose expiry is a calendar date (ACT/365 Fixed from ``valuation``)."""
        return cls(
            kind, strike, year_fraction(expiry, valuation), iv, quantity, entry_price, lot_size
        )


@dataclass(frozen=True, slots=True)
class FutureLeg:
    """A future on the underlying, valued at its cost-of-carry price ``S·e^{(r−q)τ}``."""

    expiry: float
    quantity: float
    entry_price: float
    lot_size: float = 1.0

    def __post_init__(self) -> None:
        _require(
            math.isfinite(self.expiry) and self.expiry > 0,
            f"future expiry must be > 0 years after valuation, got {self.expiry!r}",
        )
        _check_common(self.quantity, self.lot_size, self.entry_price)

    @classmethod
    def on_dates(
        cls,
        *,
        expiry: date,
        valuation: date,
        quantity: float,
        entry_price: float,
        lot_size: float = 1.0,
    ) -> FutureLeg:
        """Build a leg whose expiry is a calendar date (ACT/365 Fixed from ``valuation``)."""
        return cls(year_fraction(expiry, valuation), quantity, entry_price, lot_size)


@dataclass(frozen=True, slots=True)
class UnderlyingLeg:
    """The underlying itself (shares, an index basket, an ETF): no expiry, delta 1 per unit."""

    quantity: float
    entry_price: float
    lot_size: float = 1.0

    def __post_init__(self) -> None:
        _check_common(self.quantity, self.lot_size, self.entry_price)


Leg = OptionLeg | FutureLeg | UnderlyingLeg


def weight(leg: Leg) -> float:
    """Units of the underlying the leg's P/L moves with: signed lots times lot size."""
    return leg.quantity * leg.lot_size


@dataclass(frozen=True, slots=True)
class MarkToMarket:
    """P&L of each leg (in leg order) and of the whole position at given current prices."""

    leg_pnl: tuple[float, ...]
    total: float


def mark_to_market(legs: Sequence[Leg], current_prices: Sequence[float]) -> MarkToMarket:
    """Mark a position to market: ``(current − entry) × quantity × lot_size`` per leg.

    ``current_prices`` are per-unit market prices in the order of ``legs`` (option premiums,
    futures prices, the underlying's price).  This is realisable P&L at quoted prices, not a
    model value; use :func:`~quantdesk.analytics.strategies.valuation.pnl_at` for that.
    """
    _require(
        len(current_prices) == len(legs),
        f"got {len(current_prices)} prices for {len(legs)} legs",
    )
    pnl: list[float] = []
    for leg, price in zip(legs, current_prices, strict=True):
        _require(math.isfinite(price) and price >= 0, f"price must be >= 0, got {price!r}")
        pnl.append((price - leg.entry_price) * weight(leg))
    return MarkToMarket(leg_pnl=tuple(pnl), total=math.fsum(pnl))
