"""Legs, model valuation at any horizon, net Greeks and mark-to-market of strategies."""

from __future__ import annotations

import dataclasses
import math
from datetime import date

import numpy as np
import pytest
import QuantLib as ql

from quantdesk.analytics.strategies import (
    FutureLeg,
    Leg,
    NetGreeks,
    OptionLeg,
    UnderlyingLeg,
    first_expiry,
    mark_to_market,
    net_greeks,
    pnl_at,
    pnl_curve,
    year_fraction,
)

_TODAY = ql.Date(2, 1, 2025)
_DC = ql.Actual365Fixed()


def quantlib_price(
    kind: str, spot: float, strike: float, days: int, r: float, q: float, vol: float
) -> float:
    """Black-Scholes-Merton price from QuantLib's AnalyticEuropeanEngine (the reference)."""
    ql.Settings.instance().evaluationDate = _TODAY
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        ql.YieldTermStructureHandle(ql.FlatForward(_TODAY, q, _DC)),
        ql.YieldTermStructureHandle(ql.FlatForward(_TODAY, r, _DC)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(_TODAY, ql.NullCalendar(), vol, _DC)),
    )
    option_type = ql.Option.Call if kind == "call" else ql.Option.Put
    option = ql.EuropeanOption(
        ql.PlainVanillaPayoff(option_type, strike), ql.EuropeanExercise(_TODAY + days)
    )
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    return float(option.NPV())


def test_expiry_payoff_of_each_leg_type_is_hand_worked() -> None:
    call = OptionLeg("call", 100.0, 0.25, 0.2, quantity=2, entry_price=5.0, lot_size=10)
    put = OptionLeg("put", 100.0, 0.25, 0.2, quantity=-1, entry_price=4.0, lot_size=10)
    future = FutureLeg(0.25, quantity=1, entry_price=101.0, lot_size=10)
    stock = UnderlyingLeg(quantity=-3, entry_price=99.0)
    prices = np.array([0.0, 90.0, 100.0, 105.0, 120.0])
    assert pnl_at([call], prices, horizon=None).tolist() == [-100.0, -100.0, -100.0, 0.0, 300.0]
    # Short put: keeps the 4.0 premium above the strike, loses K − S − 4 below it.
    assert pnl_at([put], prices, horizon=None).tolist() == [-960.0, -60.0, 40.0, 40.0, 40.0]
    assert pnl_at([future], prices, horizon=None).tolist() == [-1010.0, -110.0, -10.0, 40.0, 190.0]
    assert pnl_at([stock], prices, horizon=None).tolist() == [297.0, 27.0, -3.0, -18.0, -63.0]


def test_curve_accepts_any_shape_and_rejects_negative_prices() -> None:
    leg = OptionLeg("call", 100.0, 0.5, 0.2, quantity=1, entry_price=5.0)
    grid = np.array([[90.0, 100.0], [110.0, 120.0]])
    assert pnl_at([leg], grid, horizon=None).shape == (2, 2)
    assert pnl_at([leg], 110.0, horizon=None).shape == ()
    with pytest.raises(ValueError, match="finite and >= 0"):
        pnl_at([leg], [-1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        pnl_at([leg], [math.nan])


def _random_option_position(rng: np.random.Generator) -> tuple[list[OptionLeg], list[int]]:
    legs: list[OptionLeg] = []
    days: list[int] = []
    for _ in range(int(rng.integers(1, 5))):
        d = int(rng.integers(5, 200))
        days.append(d)
        legs.append(
            OptionLeg(
                "call" if rng.random() < 0.5 else "put",
                strike=float(rng.uniform(60.0, 160.0)),
                expiry=d / 365.0,
                iv=float(rng.uniform(0.05, 0.8)),
                quantity=float(rng.integers(-3, 4)),
                entry_price=float(rng.uniform(0.0, 20.0)),
                lot_size=float(rng.choice([1.0, 25.0, 75.0, 100.0])),
            )
        )
    return legs, days


def test_value_before_and_at_first_expiry_matches_quantlib_on_random_positions() -> None:
    """T+n curves (and calendars at the near expiry) against QuantLib, leg by leg."""
    rng = np.random.default_rng(20250102)
    for _ in range(250):
        legs, days = _random_option_position(rng)
        r, q = float(rng.uniform(-0.01, 0.1)), float(rng.uniform(0.0, 0.05))
        horizon_days = int(rng.integers(0, min(days) + 1))  # up to and including the 1st expiry
        spots = rng.uniform(40.0, 200.0, size=4)
        ours = pnl_at(legs, spots, horizon=horizon_days / 365.0, r=r, q=q)
        for spot, value in zip(spots, ours, strict=True):
            expected = 0.0
            for leg, d in zip(legs, days, strict=True):
                left = d - horizon_days
                if left == 0:
                    worth = (
                        max(spot - leg.strike, 0.0)
                        if leg.kind == "call"
                        else max(leg.strike - spot, 0.0)
                    )
                else:
                    worth = quantlib_price(leg.kind, spot, leg.strike, left, r, q, leg.iv)
                expected += (worth - leg.entry_price) * leg.quantity * leg.lot_size
            assert value == pytest.approx(expected, rel=1e-9, abs=1e-7)


def test_futures_are_valued_at_cost_of_carry_until_they_expire() -> None:
    future = FutureLeg(0.5, quantity=2, entry_price=100.0, lot_size=50)
    near_call = OptionLeg("call", 100.0, 0.25, 0.2, quantity=1, entry_price=0.0)
    r, q = 0.07, 0.02
    # At the option's expiry the future still has 0.25 years of carry left.
    value = pnl_at([future, near_call], [110.0], horizon=None, r=r, q=q)
    expected = (110.0 * math.exp((r - q) * 0.25) - 100.0) * 100 + 10.0
    assert value[0] == pytest.approx(expected, rel=1e-14)


def test_price_floor_uses_the_exact_limits_at_zero() -> None:
    put = OptionLeg("put", 100.0, 0.5, 0.3, quantity=1, entry_price=0.0)
    call = OptionLeg("call", 100.0, 0.5, 0.3, quantity=1, entry_price=0.0)
    r = 0.05
    at_zero = pnl_at([put, call], [0.0, 1e-9], horizon=0.0, r=r)
    assert at_zero[0] == 100.0 * math.exp(-r * 0.5)
    assert at_zero[1] == pytest.approx(at_zero[0], abs=1e-8)  # continuous into the floor


def test_upper_asymptote_is_the_limit_of_the_curve() -> None:
    legs: list[Leg] = [
        OptionLeg("call", 100.0, 0.5, 0.3, quantity=2, entry_price=8.0),
        OptionLeg("call", 120.0, 0.25, 0.3, quantity=-1, entry_price=3.0),
        OptionLeg("put", 90.0, 0.5, 0.3, quantity=1, entry_price=4.0),
        FutureLeg(0.75, quantity=-1, entry_price=101.0),
        UnderlyingLeg(quantity=0.5, entry_price=100.0),
    ]
    for horizon in (0.0, 0.1, None):
        curve = pnl_curve(legs, horizon=horizon, r=0.06, q=0.02)
        slope, intercept = curve.upper_asymptote()
        far = np.array([1e5, 2e5])
        assert curve(far) == pytest.approx(slope * far + intercept, rel=1e-12)


def test_first_expiry_and_horizon_limits() -> None:
    near = OptionLeg("call", 100.0, 0.1, 0.2, quantity=-1, entry_price=2.0)
    far = OptionLeg("call", 100.0, 0.3, 0.2, quantity=1, entry_price=5.0)
    stock = UnderlyingLeg(quantity=1, entry_price=100.0)
    assert first_expiry([far, near, stock]) == 0.1
    assert first_expiry([stock]) == 0.0
    assert pnl_curve([far, near]).horizon == 0.1
    assert not pnl_curve([far, near]).is_piecewise_linear
    # Year fractions within 1e-10 of an expiry are that expiry (date arithmetic rounds).
    assert pnl_curve([far, near], horizon=0.1 - 1e-12).remaining[1] == 0.0
    with pytest.raises(ValueError, match="past the first expiry"):
        pnl_curve([far, near], horizon=0.2)
    with pytest.raises(ValueError, match="horizon must be >= 0"):
        pnl_curve([far], horizon=-0.1)
    with pytest.raises(ValueError, match="at least one leg"):
        pnl_curve([])
    with pytest.raises(ValueError, match="r must be finite"):
        pnl_curve([far], r=math.inf)


def _shift_vol(legs: list[Leg], dvol: float) -> list[Leg]:
    return [
        dataclasses.replace(leg, iv=leg.iv + dvol) if isinstance(leg, OptionLeg) else leg
        for leg in legs
    ]


def test_net_greeks_are_the_derivatives_of_the_model_pnl() -> None:
    """Each net Greek against a central finite difference of ``pnl_at`` (independent of units)."""
    legs: list[Leg] = [
        OptionLeg("call", 95.0, 0.4, 0.25, quantity=2, entry_price=9.0, lot_size=50),
        OptionLeg("put", 105.0, 0.2, 0.35, quantity=-1, entry_price=7.0, lot_size=50),
        FutureLeg(0.6, quantity=-1, entry_price=102.0, lot_size=50),
        UnderlyingLeg(quantity=30, entry_price=99.0),
    ]
    s, r, q, h = 100.0, 0.06, 0.015, 0.05
    g = net_greeks(legs, s, horizon=h, r=r, q=q)

    def pnl(
        spot: float = s, horizon: float = h, rate: float = r, div: float = q, dvol: float = 0.0
    ) -> float:
        return float(pnl_at(_shift_vol(legs, dvol), spot, horizon=horizon, r=rate, q=div))

    ds, dt, dr, dv = 1e-3, 1e-5, 1e-5, 1e-5
    assert g.delta == pytest.approx((pnl(s + ds) - pnl(s - ds)) / (2 * ds), rel=1e-7)
    assert g.gamma == pytest.approx((pnl(s + 0.05) - 2 * pnl() + pnl(s - 0.05)) / 0.05**2, rel=1e-5)
    # Theta is per year of calendar time: the P/L's change as the horizon moves forward.
    assert g.theta == pytest.approx(
        (pnl(horizon=h + dt) - pnl(horizon=h - dt)) / (2 * dt), rel=1e-6
    )
    assert g.rho == pytest.approx((pnl(rate=r + dr) - pnl(rate=r - dr)) / (2 * dr), rel=1e-6)
    assert g.dividend_rho == pytest.approx((pnl(div=q + dr) - pnl(div=q - dr)) / (2 * dr), rel=1e-6)
    assert g.vega == pytest.approx((pnl(dvol=dv) - pnl(dvol=-dv)) / (2 * dv), rel=1e-6)

    def at(horizon: float = h, dvol: float = 0.0) -> NetGreeks:
        return net_greeks(_shift_vol(legs, dvol), s, horizon=horizon, r=r, q=q)

    assert g.vanna == pytest.approx((at(dvol=dv).delta - at(dvol=-dv).delta) / (2 * dv), rel=1e-5)
    assert g.volga == pytest.approx((at(dvol=dv).vega - at(dvol=-dv).vega) / (2 * dv), rel=1e-5)
    # Charm has theta's sign: the drift of delta as calendar time passes.
    charm = (at(horizon=h + dt).delta - at(horizon=h - dt).delta) / (2 * dt)
    assert g.charm == pytest.approx(charm, rel=1e-5)


def test_linear_legs_have_lot_multiplier_delta() -> None:
    future = FutureLeg(0.25, quantity=-2, entry_price=100.0, lot_size=75)
    stock = UnderlyingLeg(quantity=3, entry_price=100.0, lot_size=10)
    flat = net_greeks([future, stock], 100.0, r=0.05, q=0.05)  # no carry: delta = multiplier
    assert (flat.delta, flat.gamma, flat.vega, flat.theta) == (-150.0 + 30.0, 0.0, 0.0, 0.0)
    carry = net_greeks([future], 100.0, r=0.07, q=0.01)
    assert carry.delta == pytest.approx(-150.0 * math.exp(0.06 * 0.25), rel=1e-15)
    assert carry.rho == pytest.approx(-150.0 * 0.25 * 100.0 * math.exp(0.06 * 0.25), rel=1e-15)


def test_net_greeks_sum_option_greeks_times_quantity_and_lot_size() -> None:
    call = OptionLeg("call", 100.0, 30 / 365, 0.2, quantity=1, entry_price=0.0, lot_size=1)
    one = net_greeks([call], 100.0, r=0.05)
    three = net_greeks([dataclasses.replace(call, quantity=-3, lot_size=25)], 100.0, r=0.05)
    for field in dataclasses.fields(one):
        assert getattr(three, field.name) == pytest.approx(
            -75 * getattr(one, field.name), rel=1e-14
        )
    # A 30-day ATM call delta, hand-worked: N(d1) with d1 = (0.05 + 0.02)·√(30/365)/0.2.
    d1 = (0.05 + 0.5 * 0.2**2) * (30 / 365) / (0.2 * math.sqrt(30 / 365))
    assert one.delta == pytest.approx(0.5 * math.erfc(-d1 / math.sqrt(2)), rel=1e-14)
    with pytest.raises(ValueError, match="spot must be > 0"):
        net_greeks([call], 0.0)


def test_mark_to_market_per_leg_and_total() -> None:
    legs: list[Leg] = [
        OptionLeg("call", 24000.0, 0.02, 0.12, quantity=-2, entry_price=120.0, lot_size=75),
        OptionLeg("put", 23000.0, 0.02, 0.14, quantity=1, entry_price=80.5, lot_size=75),
        FutureLeg(0.05, quantity=1, entry_price=23500.0, lot_size=75),
    ]
    mtm = mark_to_market(legs, [100.0, 60.5, 23440.0])
    assert mtm.leg_pnl == (3000.0, -1500.0, -4500.0)
    assert mtm.total == -3000.0
    with pytest.raises(ValueError, match="2 prices for 3 legs"):
        mark_to_market(legs, [1.0, 2.0])
    with pytest.raises(ValueError, match="price must be >= 0"):
        mark_to_market(legs, [1.0, 2.0, -3.0])


def test_dates_become_act365_year_fractions() -> None:
    assert year_fraction(date(2025, 3, 27), date(2025, 1, 1)) == 85 / 365
    leg = OptionLeg.on_dates(
        "put",
        22000.0,
        expiry=date(2025, 1, 30),
        valuation=date(2025, 1, 2),
        iv=0.15,
        quantity=-1,
        entry_price=95.0,
        lot_size=75,
    )
    assert leg.expiry == 28 / 365
    fut = FutureLeg.on_dates(
        expiry=date(2025, 1, 30), valuation=date(2025, 1, 2), quantity=1, entry_price=1.0
    )
    assert fut.expiry == 28 / 365


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OptionLeg("straddle", 100.0, 0.1, 0.2, 1, 1.0), "kind must be"),  # type: ignore[arg-type]
        (lambda: OptionLeg("call", 0.0, 0.1, 0.2, 1, 1.0), "strike must be > 0"),
        (lambda: OptionLeg("call", 100.0, 0.0, 0.2, 1, 1.0), "expiry must be > 0"),
        (lambda: OptionLeg("call", 100.0, 0.1, 0.0, 1, 1.0), "iv must be > 0"),
        (lambda: OptionLeg("call", 100.0, 0.1, 0.2, math.nan, 1.0), "quantity must be finite"),
        (lambda: OptionLeg("call", 100.0, 0.1, 0.2, 1, 1.0, lot_size=0), "lot_size must be > 0"),
        (lambda: FutureLeg(-0.1, 1, 100.0), "expiry must be > 0"),
        (lambda: UnderlyingLeg(1, -5.0), "entry_price must be"),
    ],
)
def test_invalid_legs_are_refused(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()
