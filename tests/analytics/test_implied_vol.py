"""Implied volatility: round trips, QuantLib agreement, extreme inputs and reason codes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from py_lets_be_rational import black as reference_black

from quantdesk.analytics.options import IVReason, greeks, implied_vol, price

EPS = np.finfo(np.float64).eps


def _random_black_inputs(seed: int, n: int) -> tuple[np.ndarray, ...]:
    """Forward 100; log-moneyness ±3; 1 day to 30 years; vols 1%-300%."""
    rng = np.random.default_rng(seed)
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    strike = 100.0 * np.exp(rng.uniform(-3.0, 3.0, n))
    t = np.exp(rng.uniform(math.log(1 / 365), math.log(30.0), n))
    vol = np.exp(rng.uniform(math.log(0.01), math.log(3.0), n))
    return sign, strike, t, vol


def _reference_prices(
    sign: np.ndarray, F: float, strike: np.ndarray, t: np.ndarray, vol: np.ndarray
) -> np.ndarray:
    # Jäckel's own normalised Black (pure Python reference port): accurate to the last digit
    # even for out-of-the-money prices of 1e-200, where S·N(d1) - K·N(d2) cancels.
    return np.array(
        [reference_black(F, k, s, tt, w) for w, k, tt, s in zip(sign, strike, t, vol, strict=True)]
    )


def _assert_vol_as_exact_as_price_allows(
    got: np.ndarray, true: np.ndarray, price_error: np.ndarray, vega: np.ndarray
) -> np.ndarray:
    """|σ̂ - σ| <= 1e-10 + price_error/vega, and exactly 1e-10 where that is the tighter one.

    A price known to ±price_error pins σ down only to ±price_error/vega, whatever the solver
    (a deep in-the-money price holds its time value in its last digits; a price within 1e-12
    of its upper bound has a vega of 1e-12).  Written without division: vega can underflow.
    Returns the mask of well-conditioned rows (price_error/vega < 1e-12).
    """
    error = np.abs(got - true)
    np.testing.assert_array_less(error * vega, 1e-10 * vega + price_error)
    well_conditioned = price_error < 1e-12 * vega
    np.testing.assert_array_less(error[well_conditioned], 1e-10)
    return np.asarray(well_conditioned)


def test_round_trip_out_of_the_money() -> None:
    _, strike, t, vol = _random_black_inputs(seed=21, n=4000)
    forward = 100.0
    otm = np.where(strike >= forward, 1.0, -1.0)  # call above the forward, put below
    prices = _reference_prices(otm, forward, strike, t, vol)
    representable = prices > 1e-290  # below that the price itself has lost its digits
    result = implied_vol(prices, otm, forward, strike, t, 0.0, model="black76")
    assert (result.reason[representable] == IVReason.OK).all()
    vega = greeks(otm, forward, strike, t, 0.0, vol, model="black76").vega
    # The reference prices are exact to ~1 ulp (relative, even for a price of 1e-200).
    conditioned = _assert_vol_as_exact_as_price_allows(
        result.vol[representable],
        vol[representable],
        2.0 * EPS * prices[representable],
        vega[representable],
    )
    assert conditioned.mean() > 0.95


def test_round_trip_in_the_money() -> None:
    _, strike, t, vol = _random_black_inputs(seed=22, n=4000)
    forward, r = 100.0, 0.03
    df = np.exp(-r * t)
    itm = np.where(strike < forward, 1.0, -1.0)
    # In-the-money price = out-of-the-money twin + intrinsic (parity), discounted.
    twin = _reference_prices(-itm, forward, strike, t, vol)
    prices = df * (twin + np.maximum(itm * (forward - strike), 0.0))
    # The time value must survive being added to the intrinsic value (and be representable).
    has_time_value = (twin > 1e-290) & (twin > 1e-13 * prices / df)
    result = implied_vol(prices, itm, forward, strike, t, r, model="black76")
    assert (result.reason[has_time_value] == IVReason.OK).all()
    vega = greeks(itm, forward, strike, t, r, vol, model="black76").vega
    m = has_time_value
    conditioned = _assert_vol_as_exact_as_price_allows(
        result.vol[m], vol[m], 4.0 * EPS * prices[m], vega[m]
    )
    assert conditioned.mean() > 0.5


def test_bsm_round_trip_with_rates_and_dividends() -> None:
    rng = np.random.default_rng(23)
    n = 5000
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    spot = 100.0
    strike = spot * np.exp(rng.uniform(-0.7, 0.7, n))
    t = np.exp(rng.uniform(math.log(1 / 365), math.log(30.0), n))
    r, q = rng.uniform(-0.01, 0.1, n), rng.uniform(0.0, 0.05, n)
    vol = rng.uniform(0.05, 1.0, n)
    g = greeks(sign, spot, strike, t, r, vol, q)
    representable = g.price > 1e-250
    result = implied_vol(g.price, sign, spot, strike, t, r, q)
    assert (result.reason[representable] == IVReason.OK).all()
    # Our closed-form price S·e^{-qt}·N(d1) - K·e^{-rt}·N(d2) is exact to a few ulps of
    # its larger term; the solver must add nothing to that.
    price_error = 32.0 * EPS * np.maximum(spot, strike)
    m = representable
    conditioned = _assert_vol_as_exact_as_price_allows(
        result.vol[m], vol[m], price_error[m], g.vega[m]
    )
    assert conditioned.mean() > 0.6
    ok = result.reason == IVReason.OK
    repriced = price(sign, spot, strike, t, r, result.vol, q)
    np.testing.assert_allclose(repriced[ok], g.price[ok], rtol=1e-12, atol=1e-12)


def test_agrees_with_quantlib_implied_volatility() -> None:
    rng = np.random.default_rng(24)
    today = ql.Date(2, ql.January, 2024)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    for _ in range(150):
        w = 1.0 if rng.random() < 0.5 else -1.0
        S, K = 100.0, float(100.0 * math.exp(rng.uniform(-0.5, 0.5)))
        days = int(rng.integers(7, 3650))
        r, q, vol = (
            float(rng.uniform(0.0, 0.08)),
            float(rng.uniform(0, 0.04)),
            float(rng.uniform(0.08, 0.9)),
        )
        vol_quote = ql.SimpleQuote(vol)
        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(S)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, q, day_count)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, r, day_count)),
            ql.BlackVolTermStructureHandle(
                ql.BlackConstantVol(today, ql.NullCalendar(), ql.QuoteHandle(vol_quote), day_count)
            ),
        )
        option = ql.EuropeanOption(
            ql.PlainVanillaPayoff(ql.Option.Call if w > 0 else ql.Option.Put, K),
            ql.EuropeanExercise(today + days),
        )
        option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
        target = option.NPV()
        ql_vol = option.impliedVolatility(target, process, 1e-14, 1000, 1e-4, 4.0)
        ours = implied_vol(target, w, S, K, days / 365.0, r, q)
        assert ours.reason == IVReason.OK
        assert float(ours.vol) == pytest.approx(ql_vol, abs=1e-9)
        assert float(ours.vol) == pytest.approx(vol, abs=1e-10)


def test_agrees_with_quantlib_black_formula_implied_std_dev() -> None:
    sign, strike, t, vol = _random_black_inputs(seed=25, n=500)
    strike = np.clip(strike, 40.0, 250.0)
    vol = np.clip(vol, 0.05, 1.5)
    forward, df = 100.0, 0.97
    prices = df * _reference_prices(sign, forward, strike, t, vol)
    ours = implied_vol(prices, sign, forward, strike, t, -math.log(df) / t, model="black76")
    vega = greeks(sign, forward, strike, t, 0.0, vol, model="black76").vega
    # QuantLib's Newton works on the price itself: compare where that is well-conditioned.
    compared = 0
    for i in np.nonzero((prices > 1e-8) & (vega > 1e-3))[0]:
        kind = ql.Option.Call if sign[i] > 0 else ql.Option.Put
        std = ql.blackFormulaImpliedStdDev(
            kind, strike[i], forward, prices[i], df, 0.0, ql.nullDouble(), 1e-15, 1000
        )
        assert ours.vol[i] == pytest.approx(std / math.sqrt(t[i]), abs=1e-10), i
        compared += 1
    assert compared > 200


@pytest.mark.parametrize(
    ("kind", "strike", "t", "vol"),
    [
        ("call", 130.0, 1 / 365, 0.25),  # 1-day, far out of the money: price ~1e-90
        ("put", 70.0, 1 / 365, 0.4),
        ("call", 100.0, 1 / 365, 0.01),  # 1-day at the money, tiny vol
        ("call", 3000.0, 30.0, 0.6),  # 30 years, strike 30x
        ("put", 1.0, 30.0, 0.9),
        ("call", 100.0, 30.0, 1.5),  # price within 4e-5 of the upper bound
        ("put", 100.0, 0.25, 1e-4),
    ],
)
def test_extreme_but_representable_prices(kind: str, strike: float, t: float, vol: float) -> None:
    sign = 1.0 if kind == "call" else -1.0
    target = reference_black(100.0, strike, vol, t, sign)
    assert target > 0.0
    result = implied_vol(target, kind, 100.0, strike, t, 0.0, model="black76")
    assert result.reason == IVReason.OK
    assert float(result.vol) == pytest.approx(vol, rel=1e-12, abs=1e-13)


def test_reason_codes_row_by_row() -> None:
    S, K, t, r = 100.0, 100.0, 1.0, 0.05
    df = math.exp(-r * t)
    forward_intrinsic_pv = S - K * df  # call intrinsic on the forward, discounted
    prices = np.array(
        [
            10.45,
            forward_intrinsic_pv - 0.01,
            S,
            10.0,
            -1.0,
            math.nan,
            10.0,
            forward_intrinsic_pv,
            0.0,
        ]
    )
    spots = np.array([S, S, S, S, S, S, -5.0, S, S])
    times = np.array([t, t, t, 0.0, t, t, t, t, t])
    kinds = ["call"] * 8 + ["put"]
    result = implied_vol(prices, kinds, spots, K, times, r)
    expected = [
        IVReason.OK,
        IVReason.BELOW_INTRINSIC,
        IVReason.ABOVE_UPPER_BOUND,
        IVReason.NON_POSITIVE_TIME,
        IVReason.INVALID_INPUT,
        IVReason.INVALID_INPUT,
        IVReason.INVALID_INPUT,
        IVReason.OK,
        IVReason.OK,
    ]
    np.testing.assert_array_equal(result.reason, expected)
    assert result.vol[0] == pytest.approx(0.19998, abs=1e-4)
    assert np.isnan(result.vol[1:7]).all()
    assert result.vol[7] == pytest.approx(0.0, abs=1e-7)  # at intrinsic: zero vol
    assert result.vol[8] == 0.0  # worthless out-of-the-money put
    np.testing.assert_array_equal(result.ok, np.array(expected) == IVReason.OK)
    vol, reason = result  # unpacks as a tuple
    assert vol is result.vol
    assert reason is result.reason


def test_put_upper_bound_is_the_discounted_strike() -> None:
    K, t, r = 100.0, 2.0, 0.05
    result = implied_vol(
        [K * math.exp(-r * t), K * math.exp(-r * t) * (1 - 1e-9)], "put", 100.0, K, t, r
    )
    np.testing.assert_array_equal(result.reason, [IVReason.ABOVE_UPPER_BOUND, IVReason.OK])


def test_unknown_model_raises() -> None:
    with pytest.raises(ValueError, match="model"):
        implied_vol(10.0, "call", 100, 100, 1, 0.05, model="sabr")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([1.0, -1.0]),
    st.floats(-1.0, 1.0),
    st.floats(1 / 365, 30.0),
    st.floats(0.01, 2.0),
    st.floats(-0.02, 0.1),
    st.floats(0.0, 0.05),
)
def test_round_trip_property(
    w: float, log_moneyness: float, t: float, vol: float, r: float, q: float
) -> None:
    S = 100.0
    K = S * math.exp(log_moneyness)
    g = greeks(w, S, K, t, r, vol, q)
    assume(float(g.price) > 1e-250)  # an underflowed price no longer carries σ
    result = implied_vol(g.price, w, S, K, t, r, q)
    assert result.reason == IVReason.OK
    _assert_vol_as_exact_as_price_allows(
        np.atleast_1d(result.vol),
        np.array([vol]),
        np.array([32.0 * EPS * max(S, K)]),
        np.atleast_1d(g.vega),
    )
