"""Option-chain analytics: max pain, put-call ratios, ATM strike and IV, smile and 25-delta
skew, OI buildup per strike, gamma exposure (GEX) and the straddle-implied expected move.

A chain is arrays aligned on ``strikes`` (any order, no duplicates), one value per strike for
each side.  Conventions (see ``docs/analytics.md``):

* Max pain: the settlement price, among the listed strikes, that minimises the total
  intrinsic value option writers pay out, Σ call_oi·(S-K)⁺ + put_oi·(K-S)⁺.  Ties go to
  the lower strike.  Computed in O(n log n) with prefix sums instead of the O(n²) table.
* PCR: Σ put / Σ call, of open interest or of volume (NaN when the call side is empty).
* ATM strike: the listed strike nearest the forward (ties to the lower strike); ATM IV is
  the mean of the call and put IVs there (whichever exist).
* Smile: the out-of-the-money IV per strike — put IV below the forward, call IV at or above
  it, falling back to the other side where one is missing.  A strike side with no price
  (missing, NaN or 0: untraded) has no IV (reason ``NO_PRICE``) and stays out of the smile,
  the ATM IV and the 25-delta skew.
* 25-delta skew: IVs interpolated linearly in *forward* delta N(d1) along the smile
  (25-delta call: N(d1) = 0.25; 25-delta put: put forward delta -0.25, i.e. N(d1) = 0.75),
  risk reversal RR = σ25c - σ25p, butterfly BF = (σ25c + σ25p)/2 - σ_ATM.  NaN when the
  chain does not reach the target delta (no extrapolation).
* GEX (SpotGamma convention: dealers are long the calls and short the puts the public
  trades): GEX_K = (Γcall·OIcall - Γput·OIput)·multiplier·S²·0.01 — the change in dealers'
  delta, in currency, for a 1% move of the underlying.  ``multiplier`` turns OI into units
  (the lot size when OI is in contracts, 1 when it is already in shares/units).
* Expected move: the ATM straddle price (call + put at the ATM strike).  Under Black-Scholes
  it prices the mean absolute move, ≈ σ·S·√t·√(2/π) ≈ 0.8 standard deviations.
* OI buildup per strike: :func:`quantdesk.analytics.futures.oi_buildup` on each side's
  price change and OI change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from quantdesk.analytics.futures import oi_buildup
from quantdesk.analytics.options import Greeks, IVReason, greeks, implied_vol
from quantdesk.analytics.options._inputs import parse_model

FloatArray = NDArray[np.float64]

__all__ = [
    "ChainAnalytics",
    "DeltaSkew",
    "ExpectedMove",
    "GammaExposure",
    "MaxPain",
    "OptionChain",
    "analyze_chain",
    "atm_iv",
    "atm_strike",
    "delta_skew",
    "expected_move",
    "gamma_exposure",
    "max_pain",
    "pcr",
    "smile",
    "writer_payout",
]


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _aligned(strikes: ArrayLike, *columns: ArrayLike) -> tuple[FloatArray, ...]:
    k = _f(strikes).ravel()
    out = [k]
    for column in columns:
        c = _f(column).ravel()
        if c.shape != k.shape:
            raise ValueError(f"chain column of length {c.size} does not match {k.size} strikes")
        out.append(c)
    return tuple(out)


# --- max pain ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MaxPain:
    """The max-pain strike and the total writer payout at every strike (chain order)."""

    strike: float
    payout: FloatArray


def writer_payout(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> FloatArray:
    """Total intrinsic value owed by option writers if expiry settles at each strike.

    payout(S) = Σ_K call_oi_K·(S - K)⁺ + put_oi_K·(K - S)⁺, evaluated at S = each strike,
    in O(n log n): with strikes sorted, the call part at K_i is K_i·Σ_{j<i} c_j - Σ_{j<i} c_j·K_j
    and the put part Σ_{j>i} p_j·K_j - K_i·Σ_{j>i} p_j (prefix and suffix sums).
    """
    k, c, p = _aligned(strikes, call_oi, put_oi)
    order = np.argsort(k, kind="stable")
    ks, cs, ps = k[order], np.nan_to_num(c[order]), np.nan_to_num(p[order])
    call_oi_below = np.concatenate(([0.0], np.cumsum(cs)[:-1]))
    call_oik_below = np.concatenate(([0.0], np.cumsum(cs * ks)[:-1]))
    put_oi_above = np.concatenate((np.cumsum(ps[::-1])[::-1][1:], [0.0]))
    put_oik_above = np.concatenate((np.cumsum((ps * ks)[::-1])[::-1][1:], [0.0]))
    sorted_payout = (ks * call_oi_below - call_oik_below) + (put_oik_above - ks * put_oi_above)
    payout = np.empty_like(sorted_payout)
    payout[order] = sorted_payout
    return payout


def max_pain(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> MaxPain:
    """The strike minimising the total writer payout (ties to the lower strike)."""
    k = _f(strikes).ravel()
    if k.size == 0:
        raise ValueError("max pain of an empty chain")
    payout = writer_payout(k, call_oi, put_oi)
    # Prefix sums round differently from the direct table: treat payouts within 1e-12 of the
    # largest as equal, so exact ties (and OI rescaling) always resolve to the lower strike.
    tolerance = 1e-12 * max(float(np.abs(payout).max()), 1.0)
    lowest = payout <= payout.min() + tolerance
    return MaxPain(strike=float(k[lowest].min()), payout=payout)


# --- ratios, ATM, smile -----------------------------------------------------------------------


def pcr(put: ArrayLike, call: ArrayLike) -> float:
    """Put-call ratio Σput/Σcall of open interest or volume (NaN-safe; NaN if Σcall = 0)."""
    calls = float(np.nansum(_f(call)))
    return float(np.nansum(_f(put))) / calls if calls > 0.0 else math.nan


def atm_strike(strikes: ArrayLike, underlying: float) -> float:
    """The listed strike nearest ``underlying`` (ties to the lower strike)."""
    k = _f(strikes).ravel()
    if k.size == 0:
        raise ValueError("ATM strike of an empty chain")
    distance = np.abs(k - underlying)
    return float(k[distance == distance.min()].min())


def atm_iv(strikes: ArrayLike, call_iv: ArrayLike, put_iv: ArrayLike, underlying: float) -> float:
    """Mean of the call and put IVs at the ATM strike (either alone if the other is NaN)."""
    k, c, p = _aligned(strikes, call_iv, put_iv)
    at = k == atm_strike(k, underlying)
    values = np.concatenate((c[at], p[at]))
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def smile(strikes: ArrayLike, call_iv: ArrayLike, put_iv: ArrayLike, forward: float) -> FloatArray:
    """Out-of-the-money IV per strike: puts below the forward, calls at or above it."""
    k, c, p = _aligned(strikes, call_iv, put_iv)
    otm = np.where(k < forward, p, c)
    itm = np.where(k < forward, c, p)
    return np.asarray(np.where(np.isfinite(otm), otm, itm), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class DeltaSkew:
    """IVs at the target call/put deltas and the risk reversal and butterfly built on them."""

    call_iv: float
    put_iv: float
    atm_iv: float
    risk_reversal: float
    butterfly: float


def _iv_at_forward_delta(call_delta: FloatArray, iv: FloatArray, target: float) -> float:
    ok = np.isfinite(call_delta) & np.isfinite(iv)
    d, v = call_delta[ok], iv[ok]
    if d.size == 0 or not (d.min() <= target <= d.max()):
        return math.nan
    order = np.argsort(d)
    return float(np.interp(target, d[order], v[order]))


def delta_skew(
    strikes: ArrayLike,
    call_iv: ArrayLike,
    put_iv: ArrayLike,
    forward: float,
    t: float,
    delta: float = 0.25,
) -> DeltaSkew:
    """Risk reversal and butterfly at ``delta`` (0.25 → the usual 25-delta quotes).

    The smile is interpolated linearly in forward call delta N(d1), d1 = ln(F/K)/(σ√t) + σ√t/2;
    the ``delta`` put is the point where the put's forward delta N(d1) - 1 equals -delta.
    """
    k, c, p = _aligned(strikes, call_iv, put_iv)
    vol = smile(k, c, p, forward)
    with np.errstate(divide="ignore", invalid="ignore"):
        std = vol * math.sqrt(t)
        call_delta = ndtr(np.log(forward / k) / std + 0.5 * std)
    iv_call = _iv_at_forward_delta(call_delta, vol, delta)
    iv_put = _iv_at_forward_delta(call_delta, vol, 1.0 - delta)
    iv_atm = atm_iv(k, c, p, forward)
    return DeltaSkew(
        call_iv=iv_call,
        put_iv=iv_put,
        atm_iv=iv_atm,
        risk_reversal=iv_call - iv_put,
        butterfly=0.5 * (iv_call + iv_put) - iv_atm,
    )


# --- gamma exposure and expected move ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GammaExposure:
    """Dealer gamma exposure per strike (chain order) and in total, per 1% move."""

    per_strike: FloatArray
    total: float


def gamma_exposure(
    strikes: ArrayLike,
    call_gamma: ArrayLike,
    put_gamma: ArrayLike,
    call_oi: ArrayLike,
    put_oi: ArrayLike,
    spot: float,
    multiplier: float = 1.0,
) -> GammaExposure:
    """GEX_K = (Γcall·OIcall - Γput·OIput)·multiplier·S²·0.01 (dealers long calls, short puts).

    NaN gammas or OI (missing quotes) count as zero exposure.
    """
    _, gc, gp, oc, op = _aligned(strikes, call_gamma, put_gamma, call_oi, put_oi)
    scale = multiplier * spot * spot * 0.01
    per_strike = (np.nan_to_num(gc * oc) - np.nan_to_num(gp * op)) * scale
    return GammaExposure(per_strike=per_strike, total=float(per_strike.sum()))


@dataclass(frozen=True, slots=True)
class ExpectedMove:
    """The ATM straddle and the range it implies around the underlying."""

    strike: float
    straddle: float
    pct: float
    lower: float
    upper: float


def expected_move(
    strikes: ArrayLike, call_price: ArrayLike, put_price: ArrayLike, underlying: float
) -> ExpectedMove:
    """Expected move to expiry from the ATM straddle (call + put at the strike nearest
    ``underlying``); ``pct`` is the straddle as a percentage of the underlying."""
    k, c, p = _aligned(strikes, call_price, put_price)
    strike = atm_strike(k, underlying)
    at = np.flatnonzero(k == strike)[0]
    straddle = float(c[at] + p[at])
    return ExpectedMove(
        strike=strike,
        straddle=straddle,
        pct=100.0 * straddle / underlying,
        lower=underlying - straddle,
        upper=underlying + straddle,
    )


# --- the whole chain at once ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionChain:
    """One expiry's chain, arrays aligned on ``strikes``.

    Give prices, IVs or both: missing IVs are implied from the prices (``model`` decides
    whether ``spot`` is the cash underlying, "bsm", or the futures price, "black76").
    ``*_price_change`` and ``*_oi_change`` enable the OI buildup per strike.
    """

    strikes: ArrayLike
    spot: float
    t: float
    r: float
    q: float = 0.0
    model: str = "bsm"
    multiplier: float = 1.0
    call_oi: ArrayLike | None = None
    put_oi: ArrayLike | None = None
    call_oi_change: ArrayLike | None = None
    put_oi_change: ArrayLike | None = None
    call_volume: ArrayLike | None = None
    put_volume: ArrayLike | None = None
    call_price: ArrayLike | None = None
    put_price: ArrayLike | None = None
    call_price_change: ArrayLike | None = None
    put_price_change: ArrayLike | None = None
    call_iv: ArrayLike | None = None
    put_iv: ArrayLike | None = None


@dataclass(frozen=True, slots=True)
class ChainAnalytics:
    """Everything :func:`analyze_chain` derives from an :class:`OptionChain`."""

    forward: float
    atm_strike: float
    atm_iv: float
    call_iv: FloatArray
    put_iv: FloatArray
    call_iv_reason: NDArray[np.int8]
    put_iv_reason: NDArray[np.int8]
    smile: FloatArray
    skew_25d: DeltaSkew
    call_greeks: Greeks
    put_greeks: Greeks
    max_pain: MaxPain | None
    pcr_oi: float
    pcr_volume: float
    gex: GammaExposure | None
    expected_move: ExpectedMove | None
    call_buildup: NDArray[np.int8] | None
    put_buildup: NDArray[np.int8] | None


def _column(value: ArrayLike | None, n: int) -> FloatArray | None:
    if value is None:
        return None
    column = _f(value).ravel()
    if column.size != n:
        raise ValueError(f"chain column of length {column.size} does not match {n} strikes")
    return column


def _side_iv(
    iv: FloatArray | None, prices: FloatArray | None, kind: float, chain: OptionChain, k: FloatArray
) -> tuple[FloatArray, NDArray[np.int8]]:
    if iv is not None:
        reason = np.where(np.isfinite(iv), IVReason.OK, IVReason.INVALID_INPUT)
        return iv, reason.astype(np.int8)
    if prices is None:
        raise ValueError("an option chain needs prices or IVs for each side")
    solved = implied_vol(prices, kind, chain.spot, k, chain.t, chain.r, chain.q, model=chain.model)
    # An untraded strike is quoted at 0.00 (or not at all).  A zero premium is "below
    # intrinsic" in the money and solves to sigma = 0 out of it, which would put a 0 vol into
    # the smile and move the 25-delta risk reversal: such strikes have no IV, reason NO_PRICE.
    no_price = ~(np.isfinite(prices) & (prices > 0.0))
    vol = np.where(no_price, np.nan, solved.vol)
    reason = np.where(no_price, IVReason.NO_PRICE, solved.reason).astype(np.int8)
    return vol, reason


def _buildup(
    price_change: FloatArray | None, oi_change: FloatArray | None
) -> NDArray[np.int8] | None:
    if price_change is None or oi_change is None:
        return None
    return oi_buildup(price_change, oi_change)


def analyze_chain(chain: OptionChain) -> ChainAnalytics:
    """IVs, Greeks, ATM, smile and 25-delta skew, max pain, PCRs, GEX, expected move and OI
    buildup of one expiry's chain.  Parts whose inputs are missing come back as None/NaN."""
    k = _f(chain.strikes).ravel()
    n = k.size
    black76 = parse_model(chain.model)
    forward = chain.spot if black76 else chain.spot * math.exp((chain.r - chain.q) * chain.t)
    call_price, put_price = _column(chain.call_price, n), _column(chain.put_price, n)
    call_iv, call_reason = _side_iv(_column(chain.call_iv, n), call_price, 1.0, chain, k)
    put_iv, put_reason = _side_iv(_column(chain.put_iv, n), put_price, -1.0, chain, k)
    call_greeks = greeks(1.0, chain.spot, k, chain.t, chain.r, call_iv, chain.q, model=chain.model)
    put_greeks = greeks(-1.0, chain.spot, k, chain.t, chain.r, put_iv, chain.q, model=chain.model)
    call_oi, put_oi = _column(chain.call_oi, n), _column(chain.put_oi, n)
    call_volume, put_volume = _column(chain.call_volume, n), _column(chain.put_volume, n)
    return ChainAnalytics(
        forward=forward,
        atm_strike=atm_strike(k, forward),
        atm_iv=atm_iv(k, call_iv, put_iv, forward),
        call_iv=call_iv,
        put_iv=put_iv,
        call_iv_reason=call_reason,
        put_iv_reason=put_reason,
        smile=smile(k, call_iv, put_iv, forward),
        skew_25d=delta_skew(k, call_iv, put_iv, forward, chain.t),
        call_greeks=call_greeks,
        put_greeks=put_greeks,
        max_pain=max_pain(k, call_oi, put_oi)
        if call_oi is not None and put_oi is not None
        else None,
        pcr_oi=pcr(put_oi, call_oi) if call_oi is not None and put_oi is not None else math.nan,
        pcr_volume=(
            pcr(put_volume, call_volume)
            if call_volume is not None and put_volume is not None
            else math.nan
        ),
        gex=(
            gamma_exposure(
                k,
                call_greeks.gamma,
                put_greeks.gamma,
                call_oi,
                put_oi,
                chain.spot,
                chain.multiplier,
            )
            if call_oi is not None and put_oi is not None
            else None
        ),
        expected_move=expected_move(
            k,
            call_greeks.price if call_price is None else call_price,
            put_greeks.price if put_price is None else put_price,
            forward,
        ),
        call_buildup=_buildup(
            _column(chain.call_price_change, n), _column(chain.call_oi_change, n)
        ),
        put_buildup=_buildup(_column(chain.put_price_change, n), _column(chain.put_oi_change, n)),
    )
