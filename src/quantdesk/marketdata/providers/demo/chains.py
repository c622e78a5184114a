"""Demo option chains: strikes, a volatility smile, Black-76 prices and open interest.  Pure.

* **Smile.**  Implied vol is quadratic in standardised log-moneyness
  ``x = ln(K/F) / (σ_atm·√τ)``: ``σ = σ_atm·(1 + skew·x + curvature·x²)``, with ``x``
  saturating smoothly at ±4 (``4·tanh(x/4)``) so the wings flatten without a kink (a kink
  in the smile is a butterfly arbitrage).  Negative skew makes out-of-the-money puts dearer
  than calls (the equity-index "smirk" since 1987); measuring moneyness in standard
  deviations keeps the smile's shape across expiries, as short-dated smiles are steeper in
  strike terms.  The ATM level has a term structure that decays from the short end (near
  the underlying's current conditional volatility plus a variance risk premium) to the
  long-run volatility.
* **Prices.**  NSE index options are European and settle on the index; they are priced with
  Black-76 on the cost-of-carry forward for the expiry (``model="black76"``), which equals
  Black-Scholes-Merton with a dividend yield.
* **Open interest.**  Writers sell out-of-the-money options: call OI is massed above spot
  and put OI below it, thinning fast in the money, with spikes at round strikes (traders'
  focal points, multiples of 500 on NIFTY).  That is the shape that makes max pain sit near
  spot and the put-call ratio hover around 1 on real NSE chains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantdesk.analytics.options import price as option_price
from quantdesk.marketdata.domain import FloatArray
from quantdesk.marketdata.providers.demo.generator import rng, round_to_lot, round_to_tick

_MAX_STANDARD_MONEYNESS = 4.0


@dataclass(frozen=True, slots=True)
class Smile:
    """Implied-volatility surface of one underlying at one moment."""

    atm_short: float  # ATM vol of a very short expiry
    atm_long: float  # ATM vol the term structure decays to
    term_decay_years: float = 0.15
    skew: float = -0.11
    curvature: float = 0.035

    def atm(self, t: FloatArray | float) -> FloatArray:
        t_arr = np.asarray(t, dtype=np.float64)
        return np.asarray(
            self.atm_long
            + (self.atm_short - self.atm_long) * np.exp(-t_arr / self.term_decay_years),
            dtype=np.float64,
        )

    def vol(
        self, strike: FloatArray, forward: FloatArray | float, t: FloatArray | float
    ) -> FloatArray:
        atm = self.atm(t)
        x = np.log(np.asarray(strike, dtype=np.float64) / forward) / (atm * np.sqrt(t))
        # Saturate smoothly rather than clip: a kink in the smile is a butterfly arbitrage.
        x = _MAX_STANDARD_MONEYNESS * np.tanh(x / _MAX_STANDARD_MONEYNESS)
        return np.asarray(atm * (1.0 + self.skew * x + self.curvature * x * x), dtype=np.float64)


def smile_for(current_vol: float, long_run_vol: float) -> Smile:
    """The demo's smile given the underlying's conditional and long-run volatility.

    Implied vol trades a little above realised vol (the variance risk premium, about one to
    three vol points on index options; Carr & Wu 2009).
    """
    return Smile(atm_short=1.08 * current_vol + 0.01, atm_long=1.05 * long_run_vol + 0.005)


def strikes_around(spot: float, step: float, count: int) -> FloatArray:
    """``2·count + 1`` strikes on the ``step`` grid centred on the strike nearest spot."""
    centre = round(spot / step) * step
    return centre + step * np.arange(-count, count + 1, dtype=np.float64)


def roundness(strikes: FloatArray, step: float) -> FloatArray:
    """Focal-point weight: whole multiples of 10 and 2 steps attract more open interest."""
    units = np.rint(strikes / step).astype(np.int64)
    return np.where(units % 10 == 0, 2.2, np.where(units % 2 == 0, 1.4, 1.0))


@dataclass(frozen=True, slots=True)
class ChainSide:
    """Prices and activity for one option type over the strikes of one expiry."""

    price: FloatArray
    iv: FloatArray
    oi: FloatArray  # units (whole lots)
    volume: FloatArray


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    strikes: FloatArray
    forward: float
    t: float
    calls: ChainSide
    puts: ChainSide


def open_interest_profile(
    strikes: FloatArray, spot: float, atm_vol: float, t: float, step: float, call: bool
) -> FloatArray:
    """Relative OI per strike: out-of-the-money heavy, peaked at round strikes."""
    x = np.log(strikes / spot) / (atm_vol * math.sqrt(t))
    if not call:
        x = -x
    # Mass centred ~0.8 sd out of the money; the in-the-money side thins twice as fast.
    width = np.where(x >= 0.8, 1.3, 0.6)
    return np.asarray(
        np.exp(-0.5 * ((x - 0.8) / width) ** 2) * roundness(strikes, step), dtype=np.float64
    )


def option_values(
    kind: str,
    spot: FloatArray | float,
    strikes: FloatArray,
    t: float,
    rate: float,
    dividend_yield: float,
    smile: Smile,
    tick: float,
) -> FloatArray:
    """Black-76 prices on the cost-of-carry forward, on the tick grid, never below one tick.

    ``spot`` may be an array of spot levels (one row of prices per level); the smile is
    anchored to each level's own forward (sticky moneyness).
    """
    spot_col = np.asarray(spot, dtype=np.float64).reshape(-1, 1)
    forward = spot_col * math.exp((rate - dividend_yield) * t)
    iv = smile.vol(strikes[None, :], forward, t)
    raw = option_price(kind, forward, strikes[None, :], t, rate, iv, model="black76")
    prices = np.maximum(round_to_tick(raw, tick), tick)
    return prices if np.ndim(spot) else prices[0]


def price_chain(
    *,
    name: str,
    spot: float,
    strikes: FloatArray,
    t: float,
    rate: float,
    dividend_yield: float,
    smile: Smile,
    step: float,
    tick: float,
    lot: float,
    total_call_lots: float,
    put_call_ratio: float,
    seed: int,
    day: int,
) -> ChainSnapshot:
    """One expiry's chain on one day: Black-76 prices on the smile, OI and volume.

    ``name`` keys the OI noise (fixed over the contract's life, so OI changes from day to day
    come from spot moving and positions building, not from reshuffled noise); ``day`` keys
    the volume noise.
    """
    if t <= 0:
        raise ValueError("an option chain needs time to expiry")
    forward = spot * math.exp((rate - dividend_yield) * t)
    iv = smile.vol(strikes, forward, t)
    atm = float(smile.atm(t))
    oi_noise = rng(seed, "chain-oi", name).standard_normal((2, strikes.shape[0]))
    volume_noise = rng(seed, "chain-volume", name, day).standard_normal((2, strikes.shape[0]))
    x = np.log(strikes / forward) / (atm * math.sqrt(t))
    # Turnover (volume / OI) is highest at the money, where gamma traders live.
    turnover = 0.25 + 1.6 * np.exp(-0.5 * x * x)
    sides: list[ChainSide] = []
    for row, (kind, total_lots) in enumerate(
        (("call", total_call_lots), ("put", total_call_lots * put_call_ratio))
    ):
        prices = option_values(kind, spot, strikes, t, rate, dividend_yield, smile, tick)
        weight = open_interest_profile(strikes, spot, atm, t, step, call=kind == "call")
        weight = weight * np.exp(0.25 * oi_noise[row])
        oi = round_to_lot(total_lots * lot * weight / weight.sum(), lot)
        volume = round_to_lot(oi * turnover * np.exp(0.3 * volume_noise[row]), lot)
        sides.append(ChainSide(price=prices, iv=iv, oi=oi, volume=volume))
    return ChainSnapshot(strikes=strikes, forward=forward, t=t, calls=sides[0], puts=sides[1])
