"""Builders for the common option strategies: each returns the legs, priced at entry.

Every builder takes the strikes first, then keyword-only:

* ``expiry`` in years (calendars take ``near_expiry`` and ``far_expiry``);
* ``market``: a :class:`Market` with the spot at entry (also the underlying leg's entry
  price), one implied volatility or a smile ``iv(strike, expiry)``, the rate and the
  dividend yield;
* ``lots`` (> 0; the builder's name says long or short) and ``lot_size``;
* ``entry_prices``: actual fill prices per unit, in leg order, replacing the model prices.

Without ``entry_prices`` each option's entry price is its Black-Scholes-Merton value from
:func:`quantdesk.analytics.options.price`.  Names follow the usual desk meaning: an
``iron_condor`` and an ``iron_butterfly`` are *sold* (a net credit), a butterfly and a
calendar are *bought* (a net debit), verticals are named by direction (bull/bear) and by
the option type used.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quantdesk.analytics.options import price
from quantdesk.analytics.strategies.legs import Leg, OptionKind, OptionLeg, UnderlyingLeg

VolSurface = Callable[[float, float], float]
"""Implied volatility as a function of ``(strike, expiry)``."""


@dataclass(frozen=True, slots=True)
class Market:
    """Pricing inputs shared by a template's legs."""

    spot: float
    iv: float | VolSurface
    r: float = 0.0
    q: float = 0.0

    def vol(self, strike: float, expiry: float) -> float:
        return self.iv(strike, expiry) if callable(self.iv) else self.iv


@dataclass(frozen=True, slots=True)
class _Option:
    kind: OptionKind
    strike: float
    expiry: float
    ratio: float  # signed lots per lot of the strategy


@dataclass(frozen=True, slots=True)
class _Underlying:
    ratio: float


def _build(
    specs: Sequence[_Option | _Underlying],
    market: Market,
    lots: float,
    lot_size: float,
    entry_prices: Sequence[float] | None,
) -> tuple[Leg, ...]:
    if not (math.isfinite(lots) and lots > 0):
        raise ValueError(f"lots must be > 0 (the builder's name says long or short): {lots!r}")
    if entry_prices is not None and len(entry_prices) != len(specs):
        raise ValueError(f"got {len(entry_prices)} entry prices for {len(specs)} legs")
    legs: list[Leg] = []
    for i, spec in enumerate(specs):
        fill = None if entry_prices is None else float(entry_prices[i])
        if isinstance(spec, _Underlying):
            entry = market.spot if fill is None else fill
            legs.append(UnderlyingLeg(spec.ratio * lots, entry, lot_size))
            continue
        iv = market.vol(spec.strike, spec.expiry)
        if fill is None:
            fill = float(
                price(spec.kind, market.spot, spec.strike, spec.expiry, market.r, iv, market.q)
            )
        legs.append(
            OptionLeg(spec.kind, spec.strike, spec.expiry, iv, spec.ratio * lots, fill, lot_size)
        )
    return tuple(legs)


def _ordered(*strikes: float) -> None:
    if any(lo >= hi for lo, hi in itertools.pairwise(strikes)):
        raise ValueError(f"strikes must be strictly increasing, got {strikes}")


def long_straddle(
    strike: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Buy a call and a put at ``strike``: legs (call, put)."""
    specs = [_Option("call", strike, expiry, 1.0), _Option("put", strike, expiry, 1.0)]
    return _build(specs, market, lots, lot_size, entry_prices)


def short_straddle(
    strike: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell a call and a put at ``strike``: legs (call, put)."""
    specs = [_Option("call", strike, expiry, -1.0), _Option("put", strike, expiry, -1.0)]
    return _build(specs, market, lots, lot_size, entry_prices)


def long_strangle(
    put_strike: float,
    call_strike: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Buy a put at ``put_strike`` and a call at a higher ``call_strike``: legs (put, call)."""
    _ordered(put_strike, call_strike)
    specs = [_Option("put", put_strike, expiry, 1.0), _Option("call", call_strike, expiry, 1.0)]
    return _build(specs, market, lots, lot_size, entry_prices)


def short_strangle(
    put_strike: float,
    call_strike: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell a put at ``put_strike`` and a call at a higher ``call_strike``: legs (put, call)."""
    _ordered(put_strike, call_strike)
    specs = [_Option("put", put_strike, expiry, -1.0), _Option("call", call_strike, expiry, -1.0)]
    return _build(specs, market, lots, lot_size, entry_prices)


def _vertical(
    kind: OptionKind,
    lower: float,
    upper: float,
    long_lower: bool,
    expiry: float,
    market: Market,
    lots: float,
    lot_size: float,
    entry_prices: Sequence[float] | None,
) -> tuple[Leg, ...]:
    _ordered(lower, upper)
    sign = 1.0 if long_lower else -1.0
    specs = [_Option(kind, lower, expiry, sign), _Option(kind, upper, expiry, -sign)]
    return _build(specs, market, lots, lot_size, entry_prices)


def bull_call_spread(
    lower: float,
    upper: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Buy the ``lower`` call, sell the ``upper`` call (a debit): legs (lower, upper)."""
    return _vertical("call", lower, upper, True, expiry, market, lots, lot_size, entry_prices)


def bear_call_spread(
    lower: float,
    upper: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell the ``lower`` call, buy the ``upper`` call (a credit): legs (lower, upper)."""
    return _vertical("call", lower, upper, False, expiry, market, lots, lot_size, entry_prices)


def bull_put_spread(
    lower: float,
    upper: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Buy the ``lower`` put, sell the ``upper`` put (a credit): legs (lower, upper)."""
    return _vertical("put", lower, upper, True, expiry, market, lots, lot_size, entry_prices)


def bear_put_spread(
    lower: float,
    upper: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell the ``lower`` put, buy the ``upper`` put (a debit): legs (lower, upper)."""
    return _vertical("put", lower, upper, False, expiry, market, lots, lot_size, entry_prices)


def iron_condor(
    long_put: float,
    short_put: float,
    short_call: float,
    long_call: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell a put spread and a call spread (a credit): legs in strike order as named."""
    _ordered(long_put, short_put, short_call, long_call)
    specs = [
        _Option("put", long_put, expiry, 1.0),
        _Option("put", short_put, expiry, -1.0),
        _Option("call", short_call, expiry, -1.0),
        _Option("call", long_call, expiry, 1.0),
    ]
    return _build(specs, market, lots, lot_size, entry_prices)


def iron_butterfly(
    strike: float,
    width: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell a straddle at ``strike``, buy wings ``width`` away (a credit).

    Legs: (long put at strike − width, short put, short call, long call at strike + width).
    """
    if not (math.isfinite(width) and 0 < width < strike):
        raise ValueError(f"width must be in (0, strike), got {width!r}")
    specs = [
        _Option("put", strike - width, expiry, 1.0),
        _Option("put", strike, expiry, -1.0),
        _Option("call", strike, expiry, -1.0),
        _Option("call", strike + width, expiry, 1.0),
    ]
    return _build(specs, market, lots, lot_size, entry_prices)


def _butterfly(
    kind: OptionKind,
    lower: float,
    middle: float,
    upper: float,
    expiry: float,
    market: Market,
    lots: float,
    lot_size: float,
    entry_prices: Sequence[float] | None,
) -> tuple[Leg, ...]:
    _ordered(lower, middle, upper)
    specs = [
        _Option(kind, lower, expiry, 1.0),
        _Option(kind, middle, expiry, -2.0),
        _Option(kind, upper, expiry, 1.0),
    ]
    return _build(specs, market, lots, lot_size, entry_prices)


def call_butterfly(
    lower: float,
    middle: float,
    upper: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Long butterfly with calls: +1 ``lower``, −2 ``middle``, +1 ``upper`` (a debit)."""
    return _butterfly("call", lower, middle, upper, expiry, market, lots, lot_size, entry_prices)


def put_butterfly(
    lower: float,
    middle: float,
    upper: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Long butterfly with puts: +1 ``lower``, −2 ``middle``, +1 ``upper`` (a debit)."""
    return _butterfly("put", lower, middle, upper, expiry, market, lots, lot_size, entry_prices)


def _calendar(
    kind: OptionKind,
    strike: float,
    near_expiry: float,
    far_expiry: float,
    market: Market,
    lots: float,
    lot_size: float,
    entry_prices: Sequence[float] | None,
) -> tuple[Leg, ...]:
    if not near_expiry < far_expiry:
        raise ValueError(f"near_expiry {near_expiry!r} must be before far_expiry {far_expiry!r}")
    specs = [_Option(kind, strike, near_expiry, -1.0), _Option(kind, strike, far_expiry, 1.0)]
    return _build(specs, market, lots, lot_size, entry_prices)


def call_calendar(
    strike: float,
    *,
    near_expiry: float,
    far_expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell the near call, buy the far call at the same strike (a debit): legs (near, far)."""
    return _calendar("call", strike, near_expiry, far_expiry, market, lots, lot_size, entry_prices)


def put_calendar(
    strike: float,
    *,
    near_expiry: float,
    far_expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Sell the near put, buy the far put at the same strike (a debit): legs (near, far)."""
    return _calendar("put", strike, near_expiry, far_expiry, market, lots, lot_size, entry_prices)


def covered_call(
    call_strike: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Own ``lots × lot_size`` of the underlying and sell as many calls: legs (stock, call)."""
    specs: list[_Option | _Underlying] = [
        _Underlying(1.0),
        _Option("call", call_strike, expiry, -1.0),
    ]
    return _build(specs, market, lots, lot_size, entry_prices)


def protective_put(
    put_strike: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Own the underlying and buy as many puts: legs (stock, put)."""
    specs: list[_Option | _Underlying] = [_Underlying(1.0), _Option("put", put_strike, expiry, 1.0)]
    return _build(specs, market, lots, lot_size, entry_prices)


def collar(
    put_strike: float,
    call_strike: float,
    *,
    expiry: float,
    market: Market,
    lots: float = 1.0,
    lot_size: float = 1.0,
    entry_prices: Sequence[float] | None = None,
) -> tuple[Leg, ...]:
    """Own the underlying, buy a put below and sell a call above: legs (stock, put, call)."""
    _ordered(put_strike, call_strike)
    specs: list[_Option | _Underlying] = [
        _Underlying(1.0),
        _Option("put", put_strike, expiry, 1.0),
        _Option("call", call_strike, expiry, -1.0),
    ]
    return _build(specs, market, lots, lot_size, entry_prices)
