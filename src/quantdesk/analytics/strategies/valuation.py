"""Model value of a multi-leg position over a grid of underlying prices, at a horizon.

A position is valued at a *horizon* ``h`` years after the valuation date, as a function of the
underlying price ``S`` at that moment.  Each leg contributes ``weight × (value − entry)``:

* an option with ``τ = expiry − h > 0`` left: its Black-Scholes-Merton price at its own ``iv``
  (:func:`quantdesk.analytics.options.price`); with ``τ = 0``: its intrinsic value;
* a future: its cost-of-carry price ``S·e^{(r−q)τ}`` (``S`` once it expires);
* the underlying: ``S`` (dividends received are not counted).

"At expiry" means at the *first* expiry of any option or future in the position (for a
calendar spread, the near leg's expiry), with the legs that are still alive valued with
Black-Scholes at their remaining time.  Horizons beyond the first expiry are refused: what a
leg that has already expired is worth then depends on the price path, not on ``S``.

The curve is evaluated as one (grid × legs) array.  Two limits are worked out by hand rather
than by the pricer, because the pricer (correctly) refuses ``S = 0`` and ``S = ∞``:
at ``S = 0`` a call is worth 0 and a put ``K·e^{−rτ}``; as ``S → ∞`` a call tends to the line
``S·e^{−qτ} − K·e^{−rτ}`` and a put to 0.  Those give the value at the floor and the slope of
the upper ray that :mod:`~quantdesk.analytics.strategies.payoff` needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantdesk.analytics.options import greeks, price
from quantdesk.analytics.strategies.legs import FutureLeg, Leg, OptionLeg, UnderlyingLeg, weight

FloatArray = NDArray[np.float64]

# Leg type codes in the columnar table.
_CALL: Final = 0
_PUT: Final = 1
_FUTURE: Final = 2
_UNDERLYING: Final = 3

# Two expiries closer than this (about 3 ms) are the same expiry: year fractions built from
# dates and from ``days / 365`` arithmetic must agree even after float rounding.
EXPIRY_TOLERANCE: Final = 1e-10


@dataclass(frozen=True, slots=True, eq=False)  # arrays: compare by identity
class _LegTable:
    """The legs as columns, so one broadcast evaluates every leg at every grid price."""

    code: NDArray[np.int64]
    strike: FloatArray  # NaN for futures and the underlying
    expiry: FloatArray  # +inf for the underlying
    iv: FloatArray  # NaN for futures and the underlying
    weight: FloatArray  # signed quantity × lot size
    entry: FloatArray

    @classmethod
    def of(cls, legs: Sequence[Leg]) -> _LegTable:
        if not legs:
            raise ValueError("a strategy needs at least one leg")
        code, strike, expiry, iv = [], [], [], []
        for leg in legs:
            if isinstance(leg, OptionLeg):
                code.append(_CALL if leg.kind == "call" else _PUT)
                strike.append(leg.strike)
                expiry.append(leg.expiry)
                iv.append(leg.iv)
            elif isinstance(leg, FutureLeg):
                code.append(_FUTURE)
                strike.append(math.nan)
                expiry.append(leg.expiry)
                iv.append(math.nan)
            elif isinstance(leg, UnderlyingLeg):
                code.append(_UNDERLYING)
                strike.append(math.nan)
                expiry.append(math.inf)
                iv.append(math.nan)
            else:  # pragma: no cover - the Leg union is closed; guards untyped callers
                raise TypeError(f"not a strategy leg: {leg!r}")
        return cls(
            code=np.array(code, dtype=np.int64),
            strike=np.array(strike, dtype=np.float64),
            expiry=np.array(expiry, dtype=np.float64),
            iv=np.array(iv, dtype=np.float64),
            weight=np.array([weight(leg) for leg in legs], dtype=np.float64),
            entry=np.array([leg.entry_price for leg in legs], dtype=np.float64),
        )

    @property
    def is_option(self) -> NDArray[np.bool_]:
        return self.code <= _PUT


def first_expiry(legs: Sequence[Leg]) -> float:
    """The earliest option or future expiry (years); 0.0 for a position of underlying only."""
    expiries = [leg.expiry for leg in legs if not isinstance(leg, UnderlyingLeg)]
    return min(expiries, default=0.0)


@dataclass(frozen=True, slots=True, eq=False)  # arrays: compare by identity
class PnLCurve:
    """Profit/loss of a position at a horizon, as a function of the underlying price then.

    Call it with prices (any shape) to get P/L of the same shape.  Build it with
    :func:`pnl_curve`.
    """

    table: _LegTable
    horizon: float
    r: float
    q: float
    remaining: FloatArray = field(init=False, repr=False)
    """Years each leg has left at the horizon (0 for legs expiring then and the underlying)."""
    # Per-leg inputs of the evaluation, prepared once: root finders call the curve often.
    _linear: FloatArray = field(init=False, repr=False)
    _options: NDArray[np.bool_] = field(init=False, repr=False)
    _sign: FloatArray = field(init=False, repr=False)
    _strike: FloatArray = field(init=False, repr=False)
    _rem: FloatArray = field(init=False, repr=False)
    _iv: FloatArray = field(init=False, repr=False)
    _at_zero: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = self.table
        rem = t.expiry - self.horizon
        expired = (np.abs(rem) <= EXPIRY_TOLERANCE) | (t.code == _UNDERLYING)
        rem = np.where(expired, 0.0, rem)
        opt = t.is_option
        carry = np.exp((self.r - self.q) * rem)
        prepared = {
            "remaining": rem,
            # Value per unit of S of the linear legs: the carry factor of a future, 1 for the
            # underlying, 0 for options (priced separately).
            "_linear": np.select([opt, t.code == _FUTURE], [0.0, carry], default=1.0),
            "_options": opt,
            "_sign": np.where(t.code[opt] == _CALL, 1.0, -1.0),
            "_strike": t.strike[opt],
            "_rem": rem[opt],
            "_iv": t.iv[opt],
            # The pricer refuses S = 0; the limits there are 0 (call) and K·e^{−rτ} (put).
            "_at_zero": np.where(
                t.code[opt] == _CALL, 0.0, t.strike[opt] * np.exp(-self.r * rem[opt])
            ),
        }
        for name, value in prepared.items():
            object.__setattr__(self, name, value)

    @property
    def is_piecewise_linear(self) -> bool:
        """True when every option expires at the horizon: P/L is then linear between strikes."""
        return bool(np.all(self.remaining[self.table.is_option] == 0.0))

    @property
    def kinks(self) -> FloatArray:
        """Sorted distinct strikes of the options expiring at the horizon."""
        expiring = self.table.is_option & (self.remaining == 0.0)
        return np.unique(self.table.strike[expiring])

    @property
    def scale(self) -> float:
        """A price scale for the position: its largest strike or entry price of a linear leg."""
        linear = ~self.table.is_option
        prices = np.concatenate([self.table.strike[self.table.is_option], self.table.entry[linear]])
        return float(np.max(prices, initial=1.0))

    def leg_values(self, spot: ArrayLike) -> FloatArray:
        """Per-unit value of each leg at each price: shape ``spot.shape + (n_legs,)``."""
        s = np.asarray(spot, dtype=np.float64)[..., np.newaxis]
        if not np.all(np.isfinite(s) & (s >= 0)):
            raise ValueError("underlying prices must be finite and >= 0")
        out = s * self._linear
        if self._sign.size:
            positive = np.where(s > 0, s, 1.0)
            priced = price(self._sign, positive, self._strike, self._rem, self.r, self._iv, self.q)
            out[..., self._options] = np.where(s > 0, priced, self._at_zero)
        return out

    def __call__(self, spot: ArrayLike) -> FloatArray:
        values = self.leg_values(spot)
        t = self.table
        # Subtract entry per leg before summing: each term is then a small P/L, which keeps
        # the sum accurate where large notionals cancel (a covered call, a synthetic).
        return np.asarray(((values - t.entry) * t.weight).sum(axis=-1), dtype=np.float64)

    def upper_asymptote(self) -> tuple[float, float]:
        """``(slope, intercept)`` of the line the P/L tends to as ``S → ∞``.

        Calls tend to ``S·e^{−qτ} − K·e^{−rτ}``, puts to 0, futures to ``S·e^{(r−q)τ}`` and the
        underlying to ``S``.  A slope of zero (within rounding) means the P/L is bounded above
        and below on that side, and ``intercept`` is its limit.
        """
        t = self.table
        rem = self.remaining
        call = t.code == _CALL
        slope_per_unit = np.select(
            [call, t.code == _PUT, t.code == _FUTURE],
            [np.exp(-self.q * rem), 0.0, np.exp((self.r - self.q) * rem)],
            default=1.0,
        )
        value_at_zero = np.where(call, -np.nan_to_num(t.strike) * np.exp(-self.r * rem), 0.0)
        slope = float(np.sum(slope_per_unit * t.weight))
        intercept = float(np.sum((value_at_zero - t.entry) * t.weight))
        # Exposures that cancel (a covered call: +1 share, −1 call) leave rounding noise.
        if abs(slope) <= 1e-12 * float(np.sum(np.abs(t.weight))):
            slope = 0.0
        return slope, intercept


def pnl_curve(
    legs: Sequence[Leg], *, horizon: float | None = None, r: float = 0.0, q: float = 0.0
) -> PnLCurve:
    """The P/L curve of ``legs`` ``horizon`` years after valuation (default: at first expiry).

    Args:
        legs: the position.
        horizon: years after the valuation date; ``0`` is the "T+0" (today) curve,
            ``None`` the expiry curve (the first expiry; see the module docstring).
        r: continuously compounded risk-free rate.
        q: continuous dividend yield of the underlying.

    Raises:
        ValueError: no legs, a negative horizon, or one past the first expiry.
    """
    for name, value in (("r", r), ("q", q)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
    expiry = first_expiry(legs)
    h = expiry if horizon is None else horizon
    if not (math.isfinite(h) and h >= 0):
        raise ValueError(f"horizon must be >= 0 years, got {horizon!r}")
    if h > expiry + EXPIRY_TOLERANCE and any(not isinstance(x, UnderlyingLeg) for x in legs):
        raise ValueError(f"horizon {h!r} is past the first expiry {expiry!r}")
    return PnLCurve(table=_LegTable.of(legs), horizon=h, r=float(r), q=float(q))


def pnl_at(
    legs: Sequence[Leg],
    spot: ArrayLike,
    *,
    horizon: float | None = 0.0,
    r: float = 0.0,
    q: float = 0.0,
) -> FloatArray:
    """Model P/L of ``legs`` at prices ``spot``, ``horizon`` years from now (default today)."""
    return pnl_curve(legs, horizon=horizon, r=r, q=q)(spot)


@dataclass(frozen=True, slots=True)
class NetGreeks:
    """Position Greeks: Σ leg Greek × quantity × lot size, in the options module's units.

    ``delta`` is in units of the underlying (shares/index units), ``vega`` per 1.00 of vol,
    ``theta`` per year of calendar time, ``rho``/``dividend_rho`` per 1.00 of rate, ``charm``
    per year (sign as theta).
    """

    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float
    dividend_rho: float
    vanna: float
    volga: float
    charm: float


def net_greeks(
    legs: Sequence[Leg], spot: float, *, horizon: float = 0.0, r: float = 0.0, q: float = 0.0
) -> NetGreeks:
    """Net Greeks of the position at ``spot``, ``horizon`` years from now (default today).

    Options use :func:`quantdesk.analytics.options.greeks`.  A future worth ``F = S·e^{bτ}``
    (``b = r − q``) has delta ``e^{bτ}``, theta ``−b·F``, rho ``τ·F``, dividend rho ``−τ·F``
    and charm ``−b·e^{bτ}``: so per lot its delta is the lot multiplier, adjusted by the carry
    factor (exactly the multiplier at expiry or when ``r = q``), and the net delta is
    exactly the slope of the :func:`pnl_at` curve.  The underlying has delta 1 per unit.
    """
    curve = pnl_curve(legs, horizon=horizon, r=r, q=q)
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"spot must be > 0, got {spot!r}")
    t = curve.table
    rem = curve.remaining
    b = r - q
    carry = np.exp(b * rem)
    fut = t.code == _FUTURE
    und = t.code == _UNDERLYING
    fields = ("delta", "gamma", "vega", "theta", "rho", "dividend_rho", "vanna", "volga", "charm")
    per_unit = {name: np.zeros(t.code.shape) for name in fields}
    per_unit["delta"] = np.where(fut, carry, np.where(und, 1.0, 0.0))
    per_unit["theta"] = np.where(fut, -b * spot * carry, 0.0)
    per_unit["rho"] = np.where(fut, rem * spot * carry, 0.0)
    per_unit["dividend_rho"] = -per_unit["rho"]
    per_unit["charm"] = np.where(fut, -b * carry, 0.0)
    opt = t.is_option
    if np.any(opt):
        sign = np.where(t.code[opt] == _CALL, 1.0, -1.0)
        g = greeks(sign, spot, t.strike[opt], rem[opt], r, t.iv[opt], q)
        for name in fields:
            per_unit[name][opt] = getattr(g, name)
    return NetGreeks(**{name: float(np.sum(per_unit[name] * t.weight)) for name in fields})
