"""Prices and Greeks against QuantLib, hand-worked edge cases and property tests."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import example, given, settings
from hypothesis import strategies as st

from quantdesk.analytics.options import Greeks, greeks, price
from quantdesk.analytics.options._inputs import FloatArray

N_RANDOM = 3000
FIELDS = ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga", "charm")


def _random_inputs(seed: int, n: int = N_RANDOM) -> dict[str, FloatArray]:
    """Spot 100, strikes 30%-300%, 1 day to 30 years, vols 1%-150%, rates and yields ±."""
    rng = np.random.default_rng(seed)
    return {
        "sign": np.where(rng.random(n) < 0.5, 1.0, -1.0),
        "spot": np.full(n, 100.0),
        "strike": 100.0 * np.exp(rng.uniform(-1.2, 1.1, n)),
        "t": np.exp(rng.uniform(math.log(1 / 365), math.log(30.0), n)),
        "r": rng.uniform(-0.01, 0.12, n),
        "q": rng.uniform(0.0, 0.06, n),
        "sigma": np.exp(rng.uniform(math.log(0.01), math.log(1.5), n)),
    }


def _quantlib_bsm(
    w: float, S: float, K: float, T: float, r: float, q: float, vol: float
) -> list[float]:
    """QuantLib's BlackCalculator with the BSM forward and discount (what
    AnalyticEuropeanEngine does after turning curves into discount factors)."""
    df = math.exp(-r * T)
    forward = S * math.exp(-q * T) / df
    kind = ql.Option.Call if w > 0 else ql.Option.Put
    bc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, K), forward, vol * math.sqrt(T), df)
    return [
        bc.value(),
        bc.delta(S),
        bc.gamma(S),
        bc.vega(T),
        bc.theta(S, T),
        bc.rho(T),
        bc.vanna(S, T),
        # QuantLib's volga divides by the total std dev σ√T, not by σ: it is ∂vega/∂(σ√T).
        # ∂²V/∂σ² (ours, confirmed by finite differences below) is that times √T.
        bc.volga(T) * math.sqrt(T),
        bc.dividendRho(T),
    ]


def _compare(ours: Greeks, reference: np.ndarray, names: tuple[str, ...]) -> None:
    for j, name in enumerate(names):
        got = getattr(ours, name)
        scale = np.maximum(1.0, np.abs(reference[:, j]))
        # 1e-10 absolute for prices and Greeks of order one; relative for large Greeks
        # (theta or vega of a 30-year option run into the thousands).
        np.testing.assert_array_less(np.abs(got - reference[:, j]) / scale, 1e-10, err_msg=name)


def test_bsm_matches_quantlib_black_calculator_on_random_inputs() -> None:
    x = _random_inputs(seed=11)
    ours = greeks(x["sign"], x["spot"], x["strike"], x["t"], x["r"], x["sigma"], x["q"])
    reference = np.array(
        [
            _quantlib_bsm(*args)
            for args in zip(
                x["sign"], x["spot"], x["strike"], x["t"], x["r"], x["q"], x["sigma"], strict=True
            )
        ]
    )
    _compare(
        ours,
        reference,
        ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga", "dividend_rho"),
    )


def test_black76_matches_quantlib_black_calculator_on_random_inputs() -> None:
    x = _random_inputs(seed=12)
    futures = x["spot"] * np.exp(np.random.default_rng(5).uniform(-0.3, 0.3, N_RANDOM))
    ours = greeks(x["sign"], futures, x["strike"], x["t"], x["r"], x["sigma"], model="black76")
    rows = []
    for w, F, K, T, r, vol in zip(
        x["sign"], futures, x["strike"], x["t"], x["r"], x["sigma"], strict=True
    ):
        df = math.exp(-r * T)
        kind = ql.Option.Call if w > 0 else ql.Option.Put
        bc = ql.BlackCalculator(ql.PlainVanillaPayoff(kind, K), F, vol * math.sqrt(T), df)
        # With the futures price fixed, ∂V/∂r is QuantLib's rho + dividendRho (= -t·V).
        rows.append(
            [
                bc.value(),
                bc.delta(F),
                bc.gamma(F),
                bc.vega(T),
                bc.theta(F, T),
                bc.rho(T) + bc.dividendRho(T),
                bc.vanna(F, T),
                bc.volga(T) * math.sqrt(T),
            ]
        )
    _compare(
        ours, np.array(rows), ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga")
    )
    np.testing.assert_array_equal(ours.dividend_rho, 0.0)


def test_bsm_matches_quantlib_analytic_european_engine_with_dates() -> None:
    """The full QuantLib stack (flat curves, Actual/365 Fixed, integer days so t is exact)."""
    rng = np.random.default_rng(13)
    today = ql.Date(2, ql.January, 2024)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    for _ in range(200):
        w = 1.0 if rng.random() < 0.5 else -1.0
        S, K = 100.0, float(100.0 * math.exp(rng.uniform(-0.8, 0.8)))
        days = int(rng.integers(1, 3650))
        r, q, vol = (
            float(rng.uniform(-0.01, 0.1)),
            float(rng.uniform(0, 0.05)),
            float(rng.uniform(0.05, 0.9)),
        )
        process = ql.BlackScholesMertonProcess(
            ql.QuoteHandle(ql.SimpleQuote(S)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, q, day_count)),
            ql.YieldTermStructureHandle(ql.FlatForward(today, r, day_count)),
            ql.BlackVolTermStructureHandle(
                ql.BlackConstantVol(today, ql.NullCalendar(), vol, day_count)
            ),
        )
        option = ql.EuropeanOption(
            ql.PlainVanillaPayoff(ql.Option.Call if w > 0 else ql.Option.Put, K),
            ql.EuropeanExercise(today + days),
        )
        option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
        g = greeks(w, S, K, days / 365.0, r, vol, q)
        expected = [
            option.NPV(),
            option.delta(),
            option.gamma(),
            option.vega(),
            option.theta(),
            option.rho(),
        ]
        got = [g.price, g.delta, g.gamma, g.vega, g.theta, g.rho]
        for e, o in zip(expected, got, strict=True):
            assert abs(float(o) - e) <= 1e-10 * max(1.0, abs(e))
        assert abs(float(g.dividend_rho) - option.dividendRho()) <= 1e-10 * max(
            1.0, abs(option.dividendRho())
        )


def test_hand_worked_atm_call() -> None:
    # Hull's textbook case: S=K=100, t=1, r=5%, σ=20%: d1 = 0.35, d2 = 0.15,
    # C = 100·N(0.35) - 100·e^{-0.05}·N(0.15) = 10.4506.
    g = greeks("call", 100.0, 100.0, 1.0, 0.05, 0.2)
    assert float(g.price) == pytest.approx(10.450583572185565, abs=1e-12)
    assert float(g.delta) == pytest.approx(0.6368306511756191, abs=1e-12)
    # Put by parity: P = C - S + K·e^{-rt}.
    p = price("put", 100.0, 100.0, 1.0, 0.05, 0.2)
    assert float(p) == pytest.approx(10.450583572185565 - 100 + 100 * math.exp(-0.05), abs=1e-12)


def test_expiry_gives_intrinsic_value_delta_step_and_zero_greeks() -> None:
    g = greeks(
        ["call", "call", "call", "put", "put"], [110, 90, 100, 90, 110], 100.0, 0.0, 0.05, 0.3
    )
    np.testing.assert_array_equal(g.price, [10.0, 0.0, 0.0, 10.0, 0.0])
    np.testing.assert_array_equal(g.delta, [1.0, 0.0, 0.5, -1.0, 0.0])
    for name in ("gamma", "vega", "theta", "rho", "vanna", "volga", "charm", "dividend_rho"):
        np.testing.assert_array_equal(getattr(g, name), 0.0, err_msg=name)


def test_zero_vol_gives_discounted_forward_intrinsic() -> None:
    S, K, t, r, q = 100.0, 100.0, 0.5, 0.08, 0.02
    g = greeks(["call", "put"], S, K, t, r, 0.0, q)
    forward_intrinsic = S * math.exp(-q * t) - K * math.exp(-r * t)  # forward above strike
    np.testing.assert_allclose(g.price, [forward_intrinsic, 0.0], atol=1e-14)
    np.testing.assert_allclose(g.delta, [math.exp(-q * t), 0.0], atol=1e-15)
    np.testing.assert_array_equal(g.gamma, 0.0)
    np.testing.assert_array_equal(g.vega, 0.0)
    # Deterministic theta: -∂/∂t of S·e^{-qt} - K·e^{-rt}.
    assert g.theta[0] == pytest.approx(
        q * S * math.exp(-q * t) - r * K * math.exp(-r * t), abs=1e-13
    )
    # The limit of the σ > 0 formulas as σ → 0.
    near = greeks(["call", "put"], S, K, t, r, 1e-9, q)
    np.testing.assert_allclose(near.price, g.price, atol=1e-9)
    np.testing.assert_allclose(near.theta, g.theta, atol=1e-8)


def test_invalid_rows_are_nan_and_valid_rows_untouched() -> None:
    spot = np.array([100.0, -1.0, 100.0, 100.0, 100.0, math.nan, 100.0])
    strike = np.array([100.0, 100.0, 0.0, 100.0, 100.0, 100.0, 100.0])
    t = np.array([1.0, 1.0, 1.0, -0.1, 1.0, 1.0, 1.0])
    sigma = np.array([0.2, 0.2, 0.2, 0.2, -0.2, 0.2, math.inf])
    g = greeks("call", spot, strike, t, 0.05, sigma)
    assert float(g.price[0]) == pytest.approx(10.450583572185565, abs=1e-12)
    for name in FIELDS:
        assert np.isnan(getattr(g, name)[1:]).all(), name


def test_unknown_kind_or_model_raises() -> None:
    with pytest.raises(ValueError, match="kind"):
        greeks("straddle", 100, 100, 1, 0.05, 0.2)
    with pytest.raises(ValueError, match="kind"):
        greeks(["call", "cal"], 100, 100, 1, 0.05, 0.2)
    with pytest.raises(ValueError, match="\\+1"):
        greeks([1, 0], 100, 100, 1, 0.05, 0.2)
    with pytest.raises(ValueError, match="model"):
        greeks("call", 100, 100, 1, 0.05, 0.2, model="heston")


def test_kind_spellings_are_equivalent() -> None:
    by_name = price(["call", "PUT", "CE", "pe", "c", "P"], 100, 95, 0.5, 0.05, 0.3)
    by_sign = price([1, -1, 1, -1, 1, -1], 100, 95, 0.5, 0.05, 0.3)
    by_bool = price([True, False, True, False, True, False], 100, 95, 0.5, 0.05, 0.3)
    np.testing.assert_array_equal(by_name, by_sign)
    np.testing.assert_array_equal(by_bool, by_sign)


def test_broadcasting_shapes() -> None:
    strikes = np.linspace(80, 120, 5)[:, None]
    expiries = np.array([0.1, 0.5, 1.0])[None, :]
    g = greeks("call", 100.0, strikes, expiries, 0.05, 0.2)
    assert g.price.shape == (5, 3)
    expected = greeks(
        "call", 100.0, np.repeat(strikes, 3, axis=1), np.repeat(expiries, 5, axis=0), 0.05, 0.2
    )
    np.testing.assert_array_equal(g.price, expected.price)
    assert greeks("call", 100, 100, 1, 0.05, 0.2).price.shape == ()
    assert greeks("call", np.array([]), 100, 1, 0.05, 0.2).price.shape == (0,)


# --- properties ---------------------------------------------------------------------------

spots = st.floats(50.0, 150.0)
strikes_st = st.floats(50.0, 150.0)
expiries = st.floats(0.05, 3.0)
vols = st.floats(0.05, 1.0)
rates = st.floats(-0.02, 0.1)
yields = st.floats(0.0, 0.05)
kinds = st.sampled_from([1.0, -1.0])
models = st.sampled_from(["bsm", "black76"])


@settings(max_examples=200, deadline=None)
@given(spots, strikes_st, expiries, rates, vols, yields, models)
def test_put_call_parity(
    S: float, K: float, t: float, r: float, vol: float, q: float, model: str
) -> None:
    call, put = price([1.0, -1.0], S, K, t, r, vol, q, model=model)
    forward_pv = S * math.exp(-r * t) if model == "black76" else S * math.exp(-q * t)
    assert call - put == pytest.approx(forward_pv - K * math.exp(-r * t), abs=1e-10)


@settings(max_examples=200, deadline=None)
@given(kinds, spots, strikes_st, expiries, rates, vols, yields, models)
# Found by a random run: the price at the higher vol rounds 7e-15 below the other.
@example(w=1.0, S=55.0, K=50.0, t=0.0546875, r=0.0, vol=0.05078125, q=0.0, model="bsm")
def test_price_increases_with_vol_and_is_monotone_in_strike(
    w: float, S: float, K: float, t: float, r: float, vol: float, q: float, model: str
) -> None:
    # Deep in the money the time value is below the rounding of the price's two terms
    # (S·N(d1) and K·N(d2) cancel down to the intrinsic value): allow a few ulps of the larger
    # term, nothing more.
    rounding = 8 * np.finfo(float).eps * max(S, K + 1.0)
    by_vol = price(w, S, K, t, r, np.array([vol, vol * 1.01 + 1e-3]), q, model=model)
    assert by_vol[1] >= by_vol[0] - rounding
    by_strike = price(w, S, np.array([K, K + 1.0]), t, r, vol, q, model=model)
    # Calls fall and puts rise as the strike rises.
    assert w * (by_strike[1] - by_strike[0]) <= rounding


def _central(f: FloatArray, h: float) -> float:
    return float((f[1] - f[0]) / (2.0 * h))


@settings(max_examples=150, deadline=None)
@given(kinds, spots, strikes_st, expiries, rates, vols, yields, models)
def test_greeks_equal_central_finite_differences(
    w: float, S: float, K: float, t: float, r: float, vol: float, q: float, model: str
) -> None:
    g = greeks(w, S, K, t, r, vol, q, model=model)
    # Spot steps scale with the total std dev so the bump stays small against the kink.
    hs, hv, ht, hr = 1e-3 * S * vol * math.sqrt(t), 1e-4 * vol, 1e-5, 1e-5
    bump_s = np.array([S - hs, S + hs])
    bump_v = np.array([vol - hv, vol + hv])
    bump_t = np.array([t - ht, t + ht])
    bump_r = np.array([r - hr, r + hr])
    fd = {
        "delta": _central(price(w, bump_s, K, t, r, vol, q, model=model), hs),
        "gamma": _central(greeks(w, bump_s, K, t, r, vol, q, model=model).delta, hs),
        "vega": _central(price(w, S, K, t, r, bump_v, q, model=model), hv),
        "theta": -_central(price(w, S, K, bump_t, r, vol, q, model=model), ht),
        "rho": _central(price(w, S, K, t, bump_r, vol, q, model=model), hr),
        "vanna": _central(greeks(w, S, K, t, r, bump_v, q, model=model).delta, hv),
        "volga": _central(greeks(w, S, K, t, r, bump_v, q, model=model).vega, hv),
        # charm = -∂Δ/∂t: the drift of delta as calendar time passes.
        "charm": -_central(greeks(w, S, K, bump_t, r, vol, q, model=model).delta, ht),
    }
    if model == "bsm":
        fd["dividend_rho"] = _central(price(w, S, K, t, r, vol, np.array([q - hr, q + hr])), hr)
    for name, numeric in fd.items():
        analytic = float(getattr(g, name))
        assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6 * S), name
