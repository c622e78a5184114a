"""Option-chain analytics: hand-worked chains, brute-force references and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import brentq
from scipy.special import ndtr

from quantdesk.analytics.chain import (
    OptionChain,
    analyze_chain,
    atm_iv,
    atm_strike,
    delta_skew,
    expected_move,
    gamma_exposure,
    max_pain,
    pcr,
    smile,
    writer_payout,
)
from quantdesk.analytics.futures import Buildup
from quantdesk.analytics.options import IVReason, greeks, price

STRIKES = np.array([100.0, 110.0, 120.0, 130.0, 140.0])
CALL_OI = np.array([5.0, 10.0, 20.0, 15.0, 30.0])
PUT_OI = np.array([25.0, 20.0, 10.0, 5.0, 5.0])


def test_max_pain_hand_worked() -> None:
    # Writer payout if expiry settles at each strike S:
    #   S=100: calls 0;                                   puts 20·10+10·20+5·30+5·40 = 750 → 750
    #   S=110: calls 5·10 = 50;                           puts 10·10+5·20+5·30 = 350   → 400
    #   S=120: calls 5·20+10·10 = 200;                    puts 5·10+5·20 = 150         → 350
    #   S=130: calls 5·30+10·20+20·10 = 550;              puts 5·10 = 50               → 600
    #   S=140: calls 5·40+10·30+20·20+15·10 = 1050;       puts 0                       → 1050
    result = max_pain(STRIKES, CALL_OI, PUT_OI)
    np.testing.assert_allclose(result.payout, [750.0, 400.0, 350.0, 600.0, 1050.0])
    assert result.strike == 120.0


def test_max_pain_ignores_strike_order_and_breaks_ties_low() -> None:
    order = np.array([3, 0, 4, 2, 1])
    shuffled = max_pain(STRIKES[order], CALL_OI[order], PUT_OI[order])
    assert shuffled.strike == 120.0
    np.testing.assert_allclose(shuffled.payout, [600.0, 750.0, 1050.0, 350.0, 400.0])
    # Symmetric OI around 110/120: payout 10 at both → the lower strike.
    tie = max_pain([100.0, 110.0, 120.0, 130.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(tie.payout, [20.0, 10.0, 10.0, 20.0])
    assert tie.strike == 110.0
    with pytest.raises(ValueError, match="empty"):
        max_pain([], [], [])
    with pytest.raises(ValueError, match="does not match"):
        max_pain(STRIKES, CALL_OI[:4], PUT_OI)


@settings(max_examples=150, deadline=None)
@given(
    # Open interest counts contracts: whole numbers, so payouts and their ties are exact.
    hnp.arrays(np.float64, st.integers(1, 40), elements=st.integers(0, 10**6).map(float)),
    st.integers(0, 2**32 - 1),
)
def test_writer_payout_equals_the_brute_force_table(oi: np.ndarray, seed: int) -> None:
    n = oi.size
    rng = np.random.default_rng(seed)
    strikes = rng.permutation(np.arange(n) * 50.0 + 20000.0)
    put_oi = rng.permutation(oi)
    settle = strikes[:, None]
    brute = (
        oi * np.maximum(settle - strikes, 0.0) + put_oi * np.maximum(strikes - settle, 0.0)
    ).sum(axis=1)
    np.testing.assert_allclose(writer_payout(strikes, oi, put_oi), brute, rtol=1e-12, atol=1e-6)
    # The chosen strike's payout is the table's minimum (up to rounding among near-ties).
    tolerance = 1e-12 * max(brute.max(), 1.0)
    chosen = max_pain(strikes, oi, put_oi).strike
    assert brute[strikes == chosen][0] <= brute.min() + tolerance
    # Scaling all OI (contracts → shares) does not move max pain.
    assert max_pain(strikes, 75.0 * oi, 75.0 * put_oi).strike == chosen


def test_pcr_atm_and_smile_hand_worked() -> None:
    assert pcr(PUT_OI, CALL_OI) == pytest.approx(65.0 / 80.0)
    assert pcr([1.0, math.nan], [2.0, 2.0]) == pytest.approx(0.25)
    assert math.isnan(pcr([1.0], [0.0]))
    assert atm_strike(STRIKES, 114.9) == 110.0
    assert atm_strike(STRIKES, 115.0) == 110.0  # tie → lower strike
    assert atm_strike(STRIKES, 1000.0) == 140.0
    call_iv = np.array([0.30, 0.26, 0.22, 0.20, 0.21])
    put_iv = np.array([0.32, 0.27, 0.24, math.nan, 0.25])
    assert atm_iv(STRIKES, call_iv, put_iv, 121.0) == pytest.approx(0.23)
    assert atm_iv(STRIKES, call_iv, put_iv, 129.0) == pytest.approx(0.20)  # put IV missing
    # Forward 121: puts below it, calls at or above; a missing side falls back to the other.
    np.testing.assert_allclose(
        smile(STRIKES, call_iv, put_iv, 121.0), [0.32, 0.27, 0.24, 0.20, 0.21]
    )
    np.testing.assert_allclose(
        smile(STRIKES, [0.30, 0.26, 0.22, math.nan, 0.21], put_iv, 135.0),
        [0.32, 0.27, 0.24, math.nan, 0.21],
    )


def test_flat_smile_has_no_skew() -> None:
    strikes = np.linspace(50.0, 200.0, 301)
    flat = np.full(strikes.size, 0.25)
    skew = delta_skew(strikes, flat, flat, 100.0, 0.5)
    assert skew.call_iv == pytest.approx(0.25)
    assert skew.put_iv == pytest.approx(0.25)
    assert skew.risk_reversal == pytest.approx(0.0, abs=1e-15)
    assert skew.butterfly == pytest.approx(0.0, abs=1e-15)


def test_25_delta_skew_matches_a_root_find_on_the_continuous_smile() -> None:
    forward, t = 22000.0, 30 / 365

    def vol_of(k: float) -> float:  # equity-style put skew with some smile
        m = math.log(k / forward)
        return 0.14 - 0.25 * m + 1.5 * m * m

    def iv_at_call_delta(target: float) -> float:
        def delta_gap(k: float) -> float:
            s = vol_of(k) * math.sqrt(t)
            return float(ndtr(math.log(forward / k) / s + 0.5 * s)) - target

        return vol_of(brentq(delta_gap, 0.5 * forward, 2.0 * forward, xtol=1e-10))

    strikes = np.arange(15000.0, 30000.0, 5.0)
    vols = np.array([vol_of(k) for k in strikes])
    skew = delta_skew(strikes, vols, vols, forward, t)
    expected_call, expected_put = iv_at_call_delta(0.25), iv_at_call_delta(0.75)
    assert skew.call_iv == pytest.approx(expected_call, abs=1e-6)
    assert skew.put_iv == pytest.approx(expected_put, abs=1e-6)
    assert skew.risk_reversal == pytest.approx(expected_call - expected_put, abs=2e-6)
    assert skew.risk_reversal < 0.0  # puts richer than calls
    assert skew.atm_iv == pytest.approx(vol_of(22000.0))
    assert skew.butterfly == pytest.approx(
        0.5 * (expected_call + expected_put) - vol_of(22000.0), abs=2e-6
    )


def test_skew_is_nan_when_the_chain_does_not_reach_25_delta() -> None:
    strikes = np.array([99.0, 100.0, 101.0])
    vols = np.full(3, 0.2)
    skew = delta_skew(strikes, vols, vols, 100.0, 0.1)
    assert math.isnan(skew.call_iv)
    assert math.isnan(skew.risk_reversal)


def test_gamma_exposure_hand_worked() -> None:
    # S = 100, multiplier 50 → scale 50·100²·0.01 = 5000 per unit of Γ·OI.
    #   K=90 : (0.01·100 - 0.01·300)·5000 = -10000
    #   K=100: (0.02·300 - 0.02·200)·5000 = +10000
    #   K=110: (0.01·300 - 0.01·100)·5000 = +10000   → total 10000
    gex = gamma_exposure(
        [90.0, 100.0, 110.0],
        [0.01, 0.02, 0.01],
        [0.01, 0.02, 0.01],
        [100.0, 300.0, 300.0],
        [300.0, 200.0, 100.0],
        spot=100.0,
        multiplier=50.0,
    )
    np.testing.assert_allclose(gex.per_strike, [-10000.0, 10000.0, 10000.0])
    assert gex.total == pytest.approx(10000.0)


def test_expected_move_is_the_atm_straddle() -> None:
    move = expected_move(STRIKES, [22.0, 15.0, 9.0, 5.0, 2.0], [1.0, 3.0, 7.5, 13.0, 21.0], 118.0)
    assert move.strike == 120.0
    assert move.straddle == pytest.approx(16.5)
    assert move.pct == pytest.approx(16.5 / 118.0 * 100.0)
    assert (move.lower, move.upper) == pytest.approx((101.5, 134.5))


def _nifty_chain() -> tuple[OptionChain, dict[str, np.ndarray]]:
    """A NIFTY-like weekly chain: 200 strikes 50 apart, prices from a smile, random OI."""
    spot, t, r = 22000.0, 7 / 365, 0.065
    strikes = spot - 5000.0 + 50.0 * np.arange(200)
    m = np.log(strikes / spot)
    vols = 0.13 - 0.3 * m + 3.0 * m * m
    rng = np.random.default_rng(7)
    data = {
        "strikes": strikes,
        "vol": vols,
        "call_oi": rng.integers(0, 100_000, 200).astype(float),
        "put_oi": rng.integers(0, 100_000, 200).astype(float),
        "call_volume": rng.integers(0, 1_000_000, 200).astype(float),
        "put_volume": rng.integers(0, 1_000_000, 200).astype(float),
        "call_price": price(1.0, spot, strikes, t, r, vols),
        "put_price": price(-1.0, spot, strikes, t, r, vols),
        "call_oi_change": rng.normal(size=200),
        "put_oi_change": rng.normal(size=200),
        "call_price_change": rng.normal(size=200),
        "put_price_change": rng.normal(size=200),
    }
    chain = OptionChain(
        strikes=strikes,
        spot=spot,
        t=t,
        r=r,
        multiplier=25.0,
        **{name: value for name, value in data.items() if name not in {"strikes", "vol"}},
    )
    return chain, data


def test_analyze_chain_agrees_with_the_individual_functions() -> None:
    chain, data = _nifty_chain()
    out = analyze_chain(chain)
    strikes, true_vol = data["strikes"], data["vol"]
    # IVs implied from the prices come back where the price still carries them.
    g = greeks(1.0, chain.spot, strikes, chain.t, chain.r, true_vol)
    conditioned = 64 * np.finfo(float).eps * strikes < 1e-10 * g.vega
    assert conditioned.sum() > 50
    np.testing.assert_allclose(out.call_iv[conditioned], true_vol[conditioned], atol=1e-10)
    assert (out.call_iv_reason[conditioned] == IVReason.OK).all()
    assert out.forward == pytest.approx(22000.0 * math.exp(0.065 * 7 / 365))
    assert out.atm_strike == 22050.0  # forward 22027.4 is nearer 22050 than 22000
    assert out.max_pain is not None
    assert out.max_pain.strike == max_pain(strikes, data["call_oi"], data["put_oi"]).strike
    assert out.pcr_oi == pytest.approx(data["put_oi"].sum() / data["call_oi"].sum())
    assert out.pcr_volume == pytest.approx(data["put_volume"].sum() / data["call_volume"].sum())
    assert out.gex is not None
    gex = gamma_exposure(
        strikes,
        out.call_greeks.gamma,
        out.put_greeks.gamma,
        data["call_oi"],
        data["put_oi"],
        chain.spot,
        25.0,
    )
    assert out.gex.total == pytest.approx(gex.total)
    assert out.expected_move is not None
    assert out.expected_move.strike == 22050.0
    assert out.skew_25d.risk_reversal < 0.0
    assert out.call_buildup is not None
    expected = np.where(
        np.asarray(chain.call_price_change) > 0,
        np.where(
            np.asarray(chain.call_oi_change) > 0, Buildup.LONG_BUILDUP, Buildup.SHORT_COVERING
        ),
        np.where(
            np.asarray(chain.call_oi_change) > 0, Buildup.SHORT_BUILDUP, Buildup.LONG_UNWINDING
        ),
    )
    np.testing.assert_array_equal(out.call_buildup, expected)


def test_analyze_chain_from_ivs_only_and_black76() -> None:
    strikes = np.array([21900.0, 22000.0, 22100.0])
    ivs = np.array([0.14, 0.13, 0.125])
    chain = OptionChain(
        strikes=strikes, spot=22060.0, t=0.05, r=0.065, model="black76", call_iv=ivs, put_iv=ivs
    )
    out = analyze_chain(chain)
    assert out.forward == 22060.0
    assert out.atm_strike == 22100.0
    assert out.max_pain is None
    assert out.gex is None
    assert math.isnan(out.pcr_oi)
    assert out.call_buildup is None
    np.testing.assert_allclose(
        out.call_greeks.price,
        price(1.0, 22060.0, strikes, 0.05, 0.065, ivs, model="black76"),
        rtol=1e-15,
    )
    with pytest.raises(ValueError, match="prices or IVs"):
        analyze_chain(OptionChain(strikes=strikes, spot=22060.0, t=0.05, r=0.065))


@settings(max_examples=100, deadline=None)
@given(st.floats(0.05, 0.6), st.floats(-0.2, 0.2), st.floats(0.02, 1.0))
def test_put_skew_gives_negative_risk_reversal(atm: float, slope: float, t: float) -> None:
    strikes = np.geomspace(5.0, 2000.0, 2000)
    vols = np.clip(atm - slope * np.log(strikes / 100.0), 0.02, None)
    skew = delta_skew(strikes, vols, vols, 100.0, t)
    assert math.isfinite(skew.risk_reversal)
    if slope > 0.01:
        assert skew.risk_reversal < 0.0
    if slope < -0.01:
        assert skew.risk_reversal > 0.0


def test_untraded_strikes_have_no_iv_and_stay_out_of_the_smile() -> None:
    """Issue 19: a strike quoted at 0.00 (untraded) or not quoted gets reason NO_PRICE and no
    IV, instead of IV 0 "ok" that entered the smile and moved the 25-delta risk reversal."""
    spot, t, r = 22000.0, 7 / 365, 0.065
    strikes = spot - 1000.0 + 50.0 * np.arange(41)
    m = np.log(strikes / spot)
    vols = 0.13 - 0.3 * m + 3.0 * m * m
    calls = price(1.0, spot, strikes, t, r, vols)
    puts = price(-1.0, spot, strikes, t, r, vols)
    # Out-of-the-money puts near the 25-delta point: one quoted 0.00, one with no quote.
    zero, missing = int(np.searchsorted(strikes, 21650.0)), int(np.searchsorted(strikes, 21700.0))
    quoted_puts = puts.copy()
    quoted_puts[zero], quoted_puts[missing] = 0.0, math.nan
    out = analyze_chain(OptionChain(strikes, spot, t, r, call_price=calls, put_price=quoted_puts))
    assert out.put_iv_reason[zero] == IVReason.NO_PRICE
    assert out.put_iv_reason[missing] == IVReason.NO_PRICE
    assert math.isnan(out.put_iv[zero])
    assert math.isnan(out.put_iv[missing])
    # The smile falls back to the call side there, as where any one side is missing.
    assert out.smile[zero] == pytest.approx(out.call_iv[zero])
    assert (out.smile > 0.05).all()
    keep = np.ones(strikes.size, dtype=bool)
    keep[[zero, missing]] = False
    fallback = OptionChain(
        strikes, spot, t, r, call_price=calls, put_iv=np.where(keep, out.put_iv, np.nan),
        call_iv=out.call_iv,
    )  # fmt: skip
    assert out.skew_25d.risk_reversal == pytest.approx(
        analyze_chain(fallback).skew_25d.risk_reversal
    )
