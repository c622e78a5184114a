"""Demo option chains: smile shape, prices against QuantLib, no-arbitrage, OI shape."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.marketdata.domain import FloatArray
from quantdesk.marketdata.providers.demo.chains import (
    ChainSnapshot,
    Smile,
    price_chain,
    roundness,
    smile_for,
    strikes_around,
)

TICK = 0.05


def brute_force_max_pain(strikes: FloatArray, call_oi: FloatArray, put_oi: FloatArray) -> float:
    """The settlement strike minimising what writers pay, by the textbook double loop."""
    best, best_pay = math.nan, math.inf
    for settle in strikes.tolist():
        pay = 0.0
        for k, c, p in zip(strikes.tolist(), call_oi.tolist(), put_oi.tolist(), strict=True):
            pay += c * max(settle - k, 0.0) + p * max(k - settle, 0.0)
        if pay < best_pay:
            best, best_pay = settle, pay
    return best


def nifty_chain(spot: float = 25_740.0, t: float = 8 / 365, vol: float = 0.13) -> ChainSnapshot:
    return price_chain(
        name="NIFTY:test",
        spot=spot,
        strikes=strikes_around(spot, 50.0, 40),
        t=t,
        rate=0.06,
        dividend_yield=0.012,
        smile=smile_for(vol, 0.13),
        step=50.0,
        tick=TICK,
        lot=65.0,
        total_call_lots=900_000,
        put_call_ratio=1.08,
        seed=11,
        day=1,
    )


def test_strikes_are_centred_on_the_nearest_grid_strike() -> None:
    strikes = strikes_around(25_740.0, 50.0, 2)
    assert strikes.tolist() == [25_650.0, 25_700.0, 25_750.0, 25_800.0, 25_850.0]
    assert roundness(np.array([25_000.0, 25_100.0, 25_050.0]), 50.0).tolist() == [2.2, 1.4, 1.0]


def test_smile_is_a_put_skew_with_its_minimum_above_the_forward() -> None:
    smile = Smile(atm_short=0.15, atm_long=0.13)
    forward, t = 25_000.0, 30 / 365
    sd = 0.15 * math.sqrt(t)
    strikes = forward * np.exp(sd * np.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
    vols = smile.vol(strikes, forward, t)
    assert vols[2] == pytest.approx(float(smile.atm(t)))
    # Out-of-the-money puts (low strikes) dearer than equally far calls.
    assert vols[0] > vols[1] > vols[2]
    assert vols[0] - vols[2] > vols[4] - vols[2]
    grid = forward * np.exp(sd * np.linspace(-4, 4, 401))
    assert grid[int(np.argmin(smile.vol(grid, forward, t)))] > forward
    # The wings flatten out: bounded by the value at x = -4 and nearly flat far away.
    far = smile.vol(forward * np.exp(sd * np.array([-12.0, -24.0])), forward, t)
    assert far[1] < 0.15 * (1 + 0.11 * 4 + 0.035 * 16)
    assert far[1] - far[0] < 0.02 * far[0]


def test_atm_term_structure_decays_from_current_to_long_run_vol() -> None:
    smile = smile_for(current_vol=0.25, long_run_vol=0.13)
    atm = smile.atm(np.array([1 / 365, 30 / 365, 90 / 365, 2.0]))
    assert np.all(np.diff(atm) < 0)
    assert atm[0] == pytest.approx(1.08 * 0.25 + 0.01, rel=0.01)
    assert atm[-1] == pytest.approx(1.05 * 0.13 + 0.005, rel=0.01)


def test_prices_are_black76_on_the_carry_forward_per_quantlib() -> None:
    chain = nifty_chain()
    discount = math.exp(-0.06 * chain.t)
    assert chain.forward == pytest.approx(25_740.0 * math.exp((0.06 - 0.012) * chain.t))
    for side, kind in ((chain.calls, ql.Option.Call), (chain.puts, ql.Option.Put)):
        for k, iv, got in zip(
            chain.strikes.tolist(), side.iv.tolist(), side.price.tolist(), strict=True
        ):
            expected = ql.blackFormula(kind, k, chain.forward, iv * math.sqrt(chain.t), discount)
            # Rounded to the 0.05 tick, and never quoted below one tick.
            assert got == pytest.approx(max(expected, TICK), abs=TICK / 2 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(
    spot=st.floats(5_000.0, 80_000.0),
    days=st.integers(1, 120),
    vol=st.floats(0.06, 0.6),
)
def test_chains_have_no_static_arbitrage(spot: float, days: int, vol: float) -> None:
    chain = nifty_chain(spot=spot, t=days / 365, vol=vol)
    strikes, forward, t = chain.strikes, chain.forward, chain.t
    discount = math.exp(-0.06 * t)
    calls, puts = chain.calls.price, chain.puts.price
    slack = TICK + 1e-9  # prices are on the tick grid and floored at one tick
    assert np.all(calls >= discount * np.maximum(forward - strikes, 0.0) - slack)
    assert np.all(puts >= discount * np.maximum(strikes - forward, 0.0) - slack)
    assert np.all(calls <= discount * forward + slack)
    assert np.all(puts <= discount * strikes + slack)
    # Calls fall and puts rise with the strike; both are convex in it (butterflies >= 0).
    assert np.all(np.diff(calls) <= slack)
    assert np.all(np.diff(puts) >= -slack)
    assert np.all(calls[:-2] - 2 * calls[1:-1] + calls[2:] >= -2 * slack)
    assert np.all(puts[:-2] - 2 * puts[1:-1] + puts[2:] >= -2 * slack)
    # Put-call parity where neither side sits on the one-tick floor.
    live = (calls > 2 * TICK) & (puts > 2 * TICK)
    parity = calls - puts - discount * (forward - strikes)
    assert np.all(np.abs(parity[live]) <= slack)


def test_open_interest_sits_out_of_the_money_and_gives_max_pain_near_spot() -> None:
    spot = 25_740.0
    chain = nifty_chain(spot=spot)
    calls, puts, strikes = chain.calls.oi, chain.puts.oi, chain.strikes
    assert calls[strikes > spot].sum() > 3 * calls[strikes < spot].sum()
    assert puts[strikes < spot].sum() > 3 * puts[strikes > spot].sum()
    pcr = puts.sum() / calls.sum()
    assert pcr == pytest.approx(1.08, rel=0.05)
    pain = brute_force_max_pain(strikes, calls, puts)
    assert abs(pain - spot) <= 0.01 * spot
    # Round strikes attract open interest: multiples of 500 beat their neighbours.
    near = np.abs(strikes - spot) < 1_200
    round_strikes = near & (strikes % 500 == 0)
    others = near & (strikes % 100 != 0)
    assert (calls + puts)[round_strikes].mean() > 1.5 * (calls + puts)[others].mean()
    np.testing.assert_array_equal(calls % 65, 0)
    np.testing.assert_array_equal(chain.puts.volume % 65, 0)


def test_volume_is_heaviest_at_the_money() -> None:
    chain = nifty_chain()
    turnover = chain.calls.volume / np.maximum(chain.calls.oi, 1.0)
    atm = int(np.argmin(np.abs(chain.strikes - chain.forward)))
    assert turnover[atm - 2 : atm + 3].mean() > turnover[-10:].mean()


def test_chains_are_deterministic() -> None:
    a, b = nifty_chain(), nifty_chain()
    np.testing.assert_array_equal(a.calls.price, b.calls.price)
    np.testing.assert_array_equal(a.puts.oi, b.puts.oi)
    with pytest.raises(ValueError, match="time to expiry"):
        nifty_chain(t=0.0)
