"""Implied volatility of European options (Black-Scholes-Merton and Black-76), vectorised.

Each price is mapped to an out-of-the-money normalised Black call price (discount removed,
divided by √(F·K), puts turned into calls by reciprocal-strike symmetry, in-the-money
options reduced to their time value by put-call parity) and inverted with Jäckel's
"Let's be rational" (see ``_lets_be_rational``): a rational initial guess and at most two
Householder(3) steps give σ to machine precision inside the no-arbitrage bounds.

What limits accuracy is the input, not the solver: a deep in-the-money price carries its
time value in its last few digits, so σ can only be as exact as that time value
(error ≈ ulp(price)/vega).

Reason codes (``ImpliedVol.reason``, ``int8``; ``vol`` is NaN unless the code is ``OK``):

====  ======================  =====================================================
code  name                    meaning
====  ======================  =====================================================
0     ``OK``                  solved (σ = 0 when the price equals the discounted
                              intrinsic value of the forward)
1     ``BELOW_INTRINSIC``     price < discounted intrinsic value of the forward (by
                              more than 8 ulps of max(F, K): rounding is forgiven)
2     ``ABOVE_UPPER_BOUND``   price >= discounted forward (call) or strike (put)
3     ``NON_POSITIVE_TIME``   t <= 0
4     ``INVALID_INPUT``       non-finite input, price < 0, spot or strike <= 0
5     ``NO_CONVERGENCE``      the solver did not return a finite volatility
6     ``NO_PRICE``            an option chain had no price for the option (missing or
                              quoted at 0: untraded); set by ``analytics.chain``
====  ======================  =====================================================
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantdesk.analytics._jit import jit
from quantdesk.analytics.options._inputs import (
    FloatArray,
    flatten_broadcast,
    option_sign,
    parse_model,
)
from quantdesk.analytics.options._lets_be_rational import (
    MAX_ITERATIONS,
    normalised_implied_total_vol,
)

__all__ = ["IV_REASON_NAMES", "IVReason", "ImpliedVol", "implied_vol"]


class IVReason(IntEnum):
    """Why an implied volatility is (or is not) available; see the module docstring."""

    OK = 0
    BELOW_INTRINSIC = 1
    ABOVE_UPPER_BOUND = 2
    NON_POSITIVE_TIME = 3
    INVALID_INPUT = 4
    NO_CONVERGENCE = 5
    NO_PRICE = 6


IV_REASON_NAMES: dict[int, str] = {int(reason): reason.name.lower() for reason in IVReason}
"""Reason codes as the API spells them (``ok``, ``below_intrinsic``, ...)."""


class ImpliedVol(NamedTuple):
    """Implied volatilities with a reason code per option; unpacks as ``vol, reason``."""

    vol: FloatArray
    reason: NDArray[np.int8]

    @property
    def ok(self) -> NDArray[np.bool_]:
        """Mask of the options whose volatility was solved."""
        return np.asarray(self.reason == IVReason.OK)


_OK = int(IVReason.OK)
_BELOW = int(IVReason.BELOW_INTRINSIC)
_ABOVE = int(IVReason.ABOVE_UPPER_BOUND)
_NON_POSITIVE_TIME = int(IVReason.NON_POSITIVE_TIME)
_INVALID = int(IVReason.INVALID_INPUT)
_NO_CONVERGENCE = int(IVReason.NO_CONVERGENCE)
_EPS = float(np.finfo(np.float64).eps)


@jit
def _implied_vol_kernel(
    price: FloatArray,
    sign: FloatArray,
    spot: FloatArray,
    strike: FloatArray,
    t: FloatArray,
    r: FloatArray,
    q: FloatArray,
    black76: bool,
    vol_out: FloatArray,
    reason_out: NDArray[np.int8],
) -> None:
    n = vol_out.shape[0]
    s_p = 1 if price.size > 1 else 0
    s_w = 1 if sign.size > 1 else 0
    s_s = 1 if spot.size > 1 else 0
    s_k = 1 if strike.size > 1 else 0
    s_t = 1 if t.size > 1 else 0
    s_r = 1 if r.size > 1 else 0
    s_q = 1 if q.size > 1 else 0
    for i in range(n):
        p = price[i * s_p]
        w = sign[i * s_w]
        S = spot[i * s_s]
        K = strike[i * s_k]
        T = t[i * s_t]
        rr = r[i * s_r]
        qq = rr if black76 else q[i * s_q]
        vol_out[i] = math.nan
        if not (
            p >= 0.0
            and S > 0.0
            and K > 0.0
            and math.isfinite(p)
            and math.isfinite(S)
            and math.isfinite(K)
            and math.isfinite(T)
            and math.isfinite(rr)
            and math.isfinite(qq)
        ):
            reason_out[i] = _INVALID
            continue
        if T <= 0.0:
            reason_out[i] = _NON_POSITIVE_TIME
            continue
        df = math.exp(-rr * T)
        forward = S if black76 else S * math.exp((rr - qq) * T)
        undiscounted = p / df
        intrinsic = max(w * (forward - K), 0.0)
        if undiscounted < intrinsic:
            # A price at intrinsic comes back a few ulps below it after discounting and the
            # forward's exp(); forgive that much rounding (σ = 0), flag anything larger.
            if intrinsic - undiscounted > 8.0 * _EPS * max(forward, K):
                reason_out[i] = _BELOW
                continue
            undiscounted = intrinsic
        if undiscounted >= (forward if w > 0.0 else K):
            reason_out[i] = _ABOVE
            continue
        x = math.log(forward / K)
        if w * x > 0.0:
            # In the money: keep only the time value, i.e. the out-of-the-money twin's price.
            undiscounted = max(undiscounted - intrinsic, 0.0)
            w = -w
        # Normalised Black: b = B/√(FK); a put at x equals a call at -x, so solve for a call.
        beta = undiscounted / (math.sqrt(forward) * math.sqrt(K))
        x_call = -x if w < 0.0 else x
        total_vol = normalised_implied_total_vol(beta, x_call, MAX_ITERATIONS)
        if math.isfinite(total_vol) and total_vol >= 0.0:
            vol_out[i] = total_vol / math.sqrt(T)
            reason_out[i] = _OK
        elif math.isinf(total_vol):
            # The time value reached the normalised upper bound e^{x/2} through rounding.
            reason_out[i] = _ABOVE
        else:
            reason_out[i] = _NO_CONVERGENCE


def implied_vol(
    price: ArrayLike,
    kind: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    r: ArrayLike,
    q: ArrayLike = 0.0,
    model: str = "bsm",
) -> ImpliedVol:
    """Implied volatility of European option prices; all arguments broadcast.

    Args:
        price: option premium (present value).
        kind: "call"/"put" (also "c"/"p", "ce"/"pe"), an array of them, booleans or ±1.
        spot: underlying price (BSM) or futures/forward price (``model="black76"``).
        strike: strike price.
        t: time to expiry in years.
        r: continuously compounded risk-free rate.
        q: continuous dividend yield (BSM only).
        model: "bsm" or "black76".

    Returns:
        :class:`ImpliedVol` (``vol``, ``reason``) of the broadcast shape; ``vol`` is NaN
        wherever ``reason != IVReason.OK``.

    Raises:
        ValueError: unknown ``kind`` name or ``model``.
    """
    black76 = parse_model(model)
    flat = flatten_broadcast(price, option_sign(kind), spot, strike, t, r, q)
    p, sign, s, k, tt, rr, qq = flat.arrays
    vol = np.empty(flat.size, dtype=np.float64)
    reason = np.empty(flat.size, dtype=np.int8)
    if flat.size:
        _implied_vol_kernel(p, sign, s, k, tt, rr, qq, black76, vol, reason)
    return ImpliedVol(vol=vol.reshape(flat.shape), reason=reason.reshape(flat.shape))
