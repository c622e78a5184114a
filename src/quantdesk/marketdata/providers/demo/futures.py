"""Demo index and stock futures: cost-of-carry prices, lifecycle volume and open interest.  Pure.

Fair value is the cost-of-carry forward ``F = S·e^{(r−q)·τ}`` (Hull, *Options, Futures and
Other Derivatives*, ch. 5) with ``τ`` in ACT/365 years to the expiry session's close, plus a
small mean-reverting mispricing (a few basis points, as arbitrageurs keep it) so the basis is
not a deterministic function of spot.  Open interest follows a contract's life on NSE: low
while it is a far month, building as it becomes the near month, and unwinding in the last
sessions as positions roll to the next contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quantdesk.analytics.daycount import SECONDS_PER_YEAR
from quantdesk.marketdata.domain import BarArrays, FloatArray
from quantdesk.marketdata.providers.demo.generator import (
    Sessions,
    activity_profile,
    rng,
    round_to_lot,
    round_to_tick,
)

_BASIS_NOISE_BP = 3.0  # daily innovation of the mispricing, basis points of spot
_BASIS_PERSISTENCE = 0.7


@dataclass(frozen=True, slots=True)
class FutureContract:
    """One futures contract of the demo universe, located on its exchange's sessions."""

    symbol: str  # trading symbol, also the name of its random streams
    listing_index: int  # first session it trades
    expiry_index: int  # expiry session (last trading day)
    expiry_close_ts: int  # UTC epoch seconds of the expiry session's close
    rate: float  # financing rate r, continuously compounded
    dividend_yield: float  # q
    lot_size: float
    tick: float
    daily_volume: float  # units on a typical near-month day
    peak_oi: float  # units at the peak of its life


def carry_factor(contract: FutureContract, ts: FloatArray) -> FloatArray:
    """``e^{(r−q)·τ}`` at epoch seconds ``ts``: fair futures price per unit of spot."""
    tau = np.maximum(contract.expiry_close_ts - ts, 0.0) / SECONDS_PER_YEAR
    return np.exp((contract.rate - contract.dividend_yield) * tau)


def lifecycle_weight(sessions_to_expiry: FloatArray) -> FloatArray:
    """Share of peak OI/volume a contract carries ``d`` sessions before expiry.

    A logistic build-up as it becomes the near month (about 22 sessions out) times an
    unwind over the last few sessions (rollover), with a floor for far months.
    """
    d = np.asarray(sessions_to_expiry, dtype=np.float64)
    build = 1.0 / (1.0 + np.exp((d - 22.0) / 4.0))
    unwind = 1.0 - 0.65 * np.exp(-d / 2.0)
    return np.asarray(0.04 + 0.96 * build * unwind, dtype=np.float64)


def _life(contract: FutureContract) -> int:
    return contract.expiry_index - contract.listing_index + 1


def basis_noise(contract: FutureContract, seed: int) -> FloatArray:
    """AR(1) log mispricing at each session close of the contract's life."""
    eps = rng(seed, "basis", contract.symbol).standard_normal(_life(contract))
    out = np.empty_like(eps)
    level = 0.0
    for i, e in enumerate(eps.tolist()):
        level = _BASIS_PERSISTENCE * level + _BASIS_NOISE_BP * 1e-4 * e
        out[i] = level
    return out


def daily_open_interest(contract: FutureContract, seed: int) -> FloatArray:
    """End-of-day open interest (units, whole lots) for each session of the contract's life."""
    d = contract.expiry_index - np.arange(contract.listing_index, contract.expiry_index + 1)
    eps = rng(seed, "oi", contract.symbol).standard_normal(d.shape[0])
    noise = np.empty_like(eps)
    level = 0.0
    for i, e in enumerate(eps.tolist()):
        level = 0.8 * level + 0.06 * e
        noise[i] = level
    oi = contract.peak_oi * lifecycle_weight(d.astype(np.float64)) * np.exp(noise)
    return np.maximum(round_to_lot(oi, contract.lot_size), contract.lot_size)


def future_minutes(
    contract: FutureContract,
    spot: BarArrays,
    sessions: Sessions,
    first: int,
    last: int,
    seed: int,
) -> BarArrays:
    """Minute bars of the contract for sessions ``first..last`` from the spot's minute bars.

    ``spot`` must hold exactly the minutes of those sessions.  The caller clips the range to
    the contract's life.
    """
    if first < contract.listing_index or last > contract.expiry_index:
        raise ValueError(f"{contract.symbol} trades only in sessions of its life")
    basis = basis_noise(contract, seed)
    oi_close = daily_open_interest(contract, seed)
    lengths = sessions.minutes[first : last + 1]
    n_total = int(lengths.sum())
    if spot.ts.shape[0] != n_total:
        raise ValueError("spot minutes do not match the requested sessions")

    session_pos = np.repeat(np.arange(first, last + 1), lengths)
    minute_in = np.arange(n_total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    frac = (minute_in + 1) / np.repeat(lengths, lengths)
    life_pos = session_pos - contract.listing_index
    prev_pos = np.maximum(life_pos - 1, 0)
    # Mispricing and OI move smoothly from the previous close's value to this close's.
    b = basis[prev_pos] + frac * (basis[life_pos] - basis[prev_pos])
    factor = carry_factor(contract, spot.ts.astype(np.float64)) * np.exp(b)
    tick = contract.tick
    prices = [
        round_to_tick(column * factor, tick)
        for column in (spot.open, spot.high, spot.low, spot.close)
    ]
    oi_prev = np.where(life_pos > 0, oi_close[prev_pos], 0.0)
    oi = round_to_lot(oi_prev + frac * (oi_close[life_pos] - oi_prev), contract.lot_size)

    volume = np.empty(n_total, dtype=np.float64)
    start = 0
    for session, length in zip(range(first, last + 1), lengths.tolist(), strict=True):
        stream = rng(
            seed, "fut-minutes", contract.symbol, int(sessions.dates[session].astype(np.int64))
        )
        noise = stream.standard_normal(length + 1)
        weight = lifecycle_weight(np.array([contract.expiry_index - session], dtype=np.float64))[0]
        day = contract.daily_volume * weight * math.exp(0.3 * noise[-1] - 0.045)
        share = activity_profile(length) * np.exp(0.35 * noise[:-1] - 0.5 * 0.35**2) / length
        volume[start : start + length] = round_to_lot(day * share, contract.lot_size)
        start += length
    return BarArrays(
        ts=spot.ts.copy(),
        open=prices[0],
        high=prices[1],
        low=prices[2],
        close=prices[3],
        volume=volume,
        oi=oi,
    )
