"""Futures analytics: basis, cost of carry, fair value, rollover, calendar spreads, OI buildup.

All functions are vectorised (NumPy broadcasting) and pure.  Conventions:

* ``basis = futures - spot``: positive is a premium (contango), negative a discount
  (backwardation).  Some desks quote spot - futures; we follow NSE's "premium/discount".
* Implied cost of carry annualised two ways, with ``t`` in years:
  continuous ``ln(F/S)/t`` (the r - q that prices the future as S·e^{(r-q)t}) and simple
  ``(F/S - 1)/t`` (the money-market quote F = S·(1 + c·t)).
* Fair value: cost-of-carry model, continuously compounded, F = (S - PV(dividends))·e^{(r-q)t}
  where PV discounts each cash dividend paid before expiry at r.
* Rollover (in percent) = OI of the later expiries / OI of all live expiries, the figure NSE
  brokers publish in expiry week: next/(near+next), or (next+far)/(near+next+far).
* OI buildup classifies a price change with an open-interest change (the usual F&O reading):

  ============  ===========  ===================
  price         open int.    buildup
  ============  ===========  ===================
  up            up           long buildup
  down          up           short buildup
  up            down         short covering
  down          down         long unwinding
  unchanged     either       neutral (also when OI is unchanged)
  ============  ===========  ===================
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

__all__ = [
    "Buildup",
    "annualised_basis",
    "basis",
    "buildup_labels",
    "calendar_spread",
    "fair_value",
    "oi_buildup",
    "rollover_pct",
]


class Buildup(IntEnum):
    """Open-interest buildup classes; ``oi_buildup`` returns these as ``int8`` codes."""

    NEUTRAL = 0
    LONG_BUILDUP = 1
    SHORT_BUILDUP = 2
    SHORT_COVERING = 3
    LONG_UNWINDING = 4

    @property
    def label(self) -> str:
        """Trader's name, e.g. "long buildup"."""
        return self.name.lower().replace("_", " ")


_LABELS = np.array([member.label for member in Buildup])


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def basis(futures: ArrayLike, spot: ArrayLike) -> FloatArray:
    """Futures minus spot (positive = premium / contango)."""
    return _f(futures) - _f(spot)


def annualised_basis(
    futures: ArrayLike, spot: ArrayLike, t: ArrayLike, compounding: str = "continuous"
) -> FloatArray:
    """Implied annual cost of carry of a future over spot.

    Args:
        futures: futures price.
        spot: spot price.
        t: time to expiry in years (> 0; NaN where t <= 0).
        compounding: "continuous" → ln(F/S)/t, or "simple" → (F/S - 1)/t.

    Raises:
        ValueError: unknown ``compounding``.
    """
    F, S, tt = _f(futures), _f(spot), _f(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        if compounding == "continuous":
            carry = np.log(F / S) / tt
        elif compounding == "simple":
            carry = (F / S - 1.0) / tt
        else:
            raise ValueError(
                f"unknown compounding {compounding!r}; expected 'continuous' or 'simple'"
            )
    return np.asarray(np.where(tt > 0.0, carry, np.nan), dtype=np.float64)


def fair_value(
    spot: ArrayLike,
    t: ArrayLike,
    r: ArrayLike,
    q: ArrayLike = 0.0,
    dividends: ArrayLike = (),
    dividend_times: ArrayLike = (),
) -> FloatArray:
    """Cost-of-carry fair value of a future: (S - PV(dividends))·e^{(r-q)t}.

    Args:
        spot: spot price.
        t: time to expiry in years.
        r: continuously compounded financing rate.
        q: continuous dividend yield (use it or discrete dividends, or both for an index
            with a yield plus a known large payout).
        dividends: cash dividends per share (a schedule shared by all rows).
        dividend_times: their payment times in years; only those in (0, t] count.
    """
    S, tt, rr, qq = np.broadcast_arrays(_f(spot), _f(t), _f(r), _f(q))
    amounts, times = _f(dividends).ravel(), _f(dividend_times).ravel()
    if amounts.shape != times.shape:
        raise ValueError("dividends and dividend_times must have the same length")
    pv = np.zeros(S.shape)
    for amount, when in zip(amounts, times, strict=True):
        paid_before_expiry = (when > 0.0) & (when <= tt)
        pv = pv + np.where(paid_before_expiry, amount * np.exp(-rr * when), 0.0)
    return np.asarray((S - pv) * np.exp((rr - qq) * tt), dtype=np.float64)


def rollover_pct(near_oi: ArrayLike, next_oi: ArrayLike, far_oi: ArrayLike = 0.0) -> FloatArray:
    """Share of open interest already in later expiries, in percent (NaN if no OI at all)."""
    near, nxt, far = _f(near_oi), _f(next_oi), _f(far_oi)
    total = near + nxt + far
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * (nxt + far) / total
    return np.asarray(np.where(total > 0.0, pct, np.nan), dtype=np.float64)


def calendar_spread(far_price: ArrayLike, near_price: ArrayLike) -> FloatArray:
    """Far-month minus near-month futures price (what a long calendar spread pays)."""
    return _f(far_price) - _f(near_price)


def oi_buildup(price_change: ArrayLike, oi_change: ArrayLike) -> NDArray[np.int8]:
    """Classify each (price change, OI change) pair as a :class:`Buildup` code (``int8``).

    A zero change on either side, or NaN, is neutral: without both a move and a change in
    positions there is nothing to read.
    """
    dp, doi = np.broadcast_arrays(_f(price_change), _f(oi_change))
    codes = np.select(
        [
            (dp > 0) & (doi > 0),
            (dp < 0) & (doi > 0),
            (dp > 0) & (doi < 0),
            (dp < 0) & (doi < 0),
        ],
        [
            Buildup.LONG_BUILDUP,
            Buildup.SHORT_BUILDUP,
            Buildup.SHORT_COVERING,
            Buildup.LONG_UNWINDING,
        ],
        default=Buildup.NEUTRAL,
    )
    return codes.astype(np.int8)


def buildup_labels(codes: ArrayLike) -> NDArray[np.str_]:
    """Trader's names for :func:`oi_buildup` codes ("long buildup", "short covering", …)."""
    labels: NDArray[np.str_] = _LABELS[np.asarray(codes, dtype=np.intp)]
    return labels
