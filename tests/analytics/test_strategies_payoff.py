"""Breakevens, max profit/loss and probability of profit: hand-worked, Monte Carlo, properties."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from quantdesk.analytics.options import price
from quantdesk.analytics.strategies import (
    FutureLeg,
    Leg,
    OptionLeg,
    PnLCurve,
    UnderlyingLeg,
    breakevens,
    extremes,
    pnl_curve,
    probability_of_profit,
)
from quantdesk.analytics.strategies.legs import OptionKind

T = 30 / 365


def call(
    strike: float, quantity: float, entry: float, expiry: float = T, iv: float = 0.2
) -> OptionLeg:
    return OptionLeg("call", strike, expiry, iv, quantity, entry)


def put(
    strike: float, quantity: float, entry: float, expiry: float = T, iv: float = 0.2
) -> OptionLeg:
    return OptionLeg("put", strike, expiry, iv, quantity, entry)


# --- hand-worked shapes -------------------------------------------------------------------


def test_long_call_breakeven_max_and_pop() -> None:
    curve = pnl_curve([call(100.0, 1, 4.0)])
    assert breakevens(curve) == (104.0,)
    bounds = extremes(curve)
    assert (bounds.max_profit, bounds.max_loss) == (math.inf, -4.0)
    assert (bounds.unlimited_profit, bounds.unlimited_loss) == (True, False)
    # POP = P(S_T > K + premium) under the risk-neutral lognormal: N(d2) at strike 104.
    s, vol, r = 100.0, 0.25, 0.05
    curve = pnl_curve([call(100.0, 1, 4.0)], r=r)
    d2 = (math.log(s / 104.0) + (r - 0.5 * vol**2) * T) / (vol * math.sqrt(T))
    assert probability_of_profit(curve, s, vol) == pytest.approx(norm.cdf(d2), rel=1e-12)


def test_short_put_loss_is_bounded_by_the_price_floor() -> None:
    curve = pnl_curve([put(100.0, -2, 3.0)])
    assert breakevens(curve) == (97.0,)
    bounds = extremes(curve)
    assert (bounds.max_profit, bounds.max_loss) == (6.0, -194.0)
    assert not bounds.unlimited_loss


def test_short_call_has_unlimited_loss() -> None:
    bounds = extremes(pnl_curve([call(100.0, -1, 3.0)]))
    assert (bounds.max_profit, bounds.max_loss, bounds.unlimited_loss) == (3.0, -math.inf, True)


def test_iron_condor_pop_is_the_probability_between_its_breakevens() -> None:
    legs = [put(90.0, 1, 0.5), put(95.0, -1, 1.5), call(105.0, -1, 1.6), call(110.0, 1, 0.6)]
    curve = pnl_curve(legs, r=0.03, q=0.01)
    credit = 1.5 + 1.6 - 0.5 - 0.6
    assert breakevens(curve) == pytest.approx((95.0 - credit, 105.0 + credit), abs=1e-12)
    s, vol = 100.0, 0.18
    m, sd = math.log(s) + (0.03 - 0.01 - 0.5 * vol**2) * T, vol * math.sqrt(T)
    inside = norm.cdf((math.log(105.0 + credit) - m) / sd) - norm.cdf(
        (math.log(95.0 - credit) - m) / sd
    )
    assert probability_of_profit(curve, s, vol) == pytest.approx(inside, rel=1e-12)
    # A given real-world drift moves the distribution: a strong rally lowers the POP.
    assert probability_of_profit(curve, s, vol, drift=1.5) < inside


def test_flat_zero_stretches_report_their_ends_and_are_not_profitable() -> None:
    # Long call spread bought for exactly its width: P/L is 0 at and above the upper strike.
    legs = [call(100.0, 1, 5.0), call(105.0, -1, 0.0)]
    curve = pnl_curve(legs)
    assert breakevens(curve) == (105.0,)
    assert probability_of_profit(curve, 100.0, 0.3) == 0.0
    # Two zero kinks with a flat zero segment between them.
    flat = [call(100.0, 1, 0.0), call(100.0, -1, 0.0), put(90.0, 1, 0.0), put(90.0, -1, 0.0)]
    assert extremes(pnl_curve(flat)).max_profit == 0.0


def test_positions_without_options() -> None:
    future = FutureLeg(0.5, quantity=1, entry_price=101.0)
    stock = UnderlyingLeg(quantity=-1, entry_price=100.0)
    curve = pnl_curve([future], r=0.04)
    assert curve.horizon == 0.5
    assert breakevens(curve) == (101.0,)
    # A future bought and the stock sold short: at expiry the P/L is −1 whatever S is.
    hedged = pnl_curve([future, stock])
    assert breakevens(hedged) == ()
    assert extremes(hedged) == extremes(hedged)
    assert probability_of_profit(hedged, 100.0, 0.2) == 0.0
    # Underlying only: no expiry, no diffusion; the P/L is decided by today's price.
    now = pnl_curve([UnderlyingLeg(quantity=1, entry_price=90.0)])
    assert probability_of_profit(now, 100.0, 0.2) == 1.0
    assert probability_of_profit(now, 80.0, 0.2) == 0.0


def test_pop_rejects_bad_inputs() -> None:
    curve = pnl_curve([call(100.0, 1, 4.0)])
    with pytest.raises(ValueError, match="spot must be > 0"):
        probability_of_profit(curve, 0.0, 0.2)
    with pytest.raises(ValueError, match="vol must be >= 0"):
        probability_of_profit(curve, 100.0, -0.2)
    with pytest.raises(ValueError, match="drift must be finite"):
        probability_of_profit(curve, 100.0, 0.2, drift=math.nan)
    # Zero vol: S_T = S·e^{μT} for sure.
    assert probability_of_profit(curve, 100.0, 0.0, drift=0.0) == 0.0
    assert probability_of_profit(curve, 110.0, 0.0) == 1.0


def test_calendar_at_near_expiry_uses_black_scholes_for_the_far_leg() -> None:
    far_t = 90 / 365
    far_price = float(price("call", 100.0, 100.0, far_t, 0.0, 0.2))
    near_price = float(price("call", 100.0, 100.0, T, 0.0, 0.2))
    legs = [call(100.0, -1, near_price), call(100.0, 1, far_price, expiry=far_t)]
    curve = pnl_curve(legs)
    debit = far_price - near_price
    roots = breakevens(curve)
    assert len(roots) == 2
    assert roots[0] < 100.0 < roots[1]
    assert max(abs(float(curve(x))) for x in roots) < 1e-9
    bounds = extremes(curve)
    # Peak exactly at the strike (the short call's kink); worst is losing the debit.
    peak = float(price("call", 100.0, 100.0, far_t - T, 0.0, 0.2)) - debit
    assert bounds.max_profit == pytest.approx(peak, rel=1e-12)
    assert bounds.max_loss == pytest.approx(-debit, rel=1e-9)
    assert not bounds.unlimited_profit
    assert not bounds.unlimited_loss
    # With a dividend yield the far call loses value against the stock as S → ∞: the model's
    # loss is unbounded on the upside, and that is what is reported.
    assert extremes(pnl_curve(legs, q=0.03)).unlimited_loss


def test_smooth_breakeven_beyond_the_search_grid_is_found_on_the_asymptote() -> None:
    # Today's value of a long call bought far too dear: break even only far past the grid
    # (which ends at 4 × the strike for so low a vol), found by doubling the bracket.
    legs = [call(100.0, 1, 1000.0, iv=0.05)]
    curve = pnl_curve(legs, horizon=0.0)
    (root,) = breakevens(curve)
    assert root == pytest.approx(1100.0, rel=1e-12)
    assert abs(float(curve(root))) < 1e-8


# --- Monte Carlo -------------------------------------------------------------------------


def _monte_carlo_pop(
    curve: PnLCurve, spot: float, vol: float, mu: float, rng: np.random.Generator
) -> tuple[float, float]:
    n = 100_000
    h = curve.horizon
    z = rng.standard_normal(n)
    paths = spot * np.exp((mu - 0.5 * vol**2) * h + vol * math.sqrt(h) * z)
    p = float(np.mean(curve(paths) > 0))
    return p, math.sqrt(max(p * (1 - p), 1e-6) / n)


def test_pop_agrees_with_monte_carlo_on_random_positions() -> None:
    rng = np.random.default_rng(7)
    for case in range(24):
        legs: list[Leg] = []
        for _ in range(int(rng.integers(1, 5))):
            kind: OptionKind = "call" if rng.random() < 0.5 else "put"
            expiry = T if case % 3 else float(rng.choice([T, 3 * T]))  # every 3rd may be a calendar
            legs.append(
                OptionLeg(
                    kind,
                    float(rng.uniform(80, 120)),
                    expiry,
                    float(rng.uniform(0.1, 0.4)),
                    float(rng.integers(-2, 3)) or 1.0,
                    float(rng.uniform(0, 6)),
                )
            )
        if rng.random() < 0.3:
            legs.append(UnderlyingLeg(float(rng.integers(-1, 2)) or 1.0, 100.0))
        r, q, vol = 0.05, 0.01, float(rng.uniform(0.1, 0.5))
        drift = None if rng.random() < 0.5 else float(rng.uniform(-0.3, 0.3))
        curve = pnl_curve(legs, r=r, q=q)
        exact = probability_of_profit(curve, 100.0, vol, drift=drift)
        estimate, stderr = _monte_carlo_pop(
            curve, 100.0, vol, r - q if drift is None else drift, rng
        )
        assert exact == pytest.approx(estimate, abs=5 * stderr + 1e-4), legs


# --- properties -----------------------------------------------------------------------------

_strikes = st.integers(40, 200).map(float)
_quantities = st.integers(-3, 3).filter(bool).map(float)
# Premiums are quoted in ticks (0.01): a sub-tick premium such as 1e-14 makes the payoff graze
# zero over a whole segment, where "is there a root" is decided by rounding, not by the model.
_premiums = st.integers(0, 4_000).map(lambda cents: cents / 100)


@st.composite
def option_legs(draw: st.DrawFn, expiries: list[float]) -> OptionLeg:
    return OptionLeg(
        draw(st.sampled_from(["call", "put"])),
        draw(_strikes),
        draw(st.sampled_from(expiries)),
        draw(st.floats(0.05, 0.9)),
        draw(_quantities),
        draw(_premiums),
        draw(st.sampled_from([1.0, 2.0, 5.0])),
    )


@st.composite
def positions(draw: st.DrawFn, calendars: bool = False) -> list[Leg]:
    expiries = [T, 3 * T] if calendars else [T]
    legs: list[Leg] = draw(st.lists(option_legs(expiries), min_size=1, max_size=4))
    if draw(st.booleans()):
        legs.append(FutureLeg(draw(st.sampled_from([T, 2 * T])), draw(_quantities), draw(_strikes)))
    if draw(st.booleans()):
        legs.append(UnderlyingLeg(draw(_quantities), draw(_strikes)))
    return legs


def _negated(legs: list[Leg]) -> list[Leg]:
    return [dataclasses.replace(leg, quantity=-leg.quantity) for leg in legs]


_rates = st.tuples(st.floats(-0.01, 0.1), st.floats(0.0, 0.05))


def _check_curve(curve: PnLCurve) -> None:
    roots = breakevens(curve)
    assert all(b >= 0 for b in roots)
    assert list(roots) == sorted(roots)
    for b in roots:
        # Float P/L near a root far out on a ray (b ~ 1e7) carries rounding of b's magnitude.
        assert abs(float(curve(b))) < 1e-8 * max(1.0, b)
    # No root is missed: every sign change on a fine grid brackets a reported breakeven.
    grid = np.linspace(0.0, 600.0, 6001)
    values = curve(grid)
    for i in np.flatnonzero(values[:-1] * values[1:] < 0):
        assert any(grid[i] <= b <= grid[i + 1] for b in roots)
    bounds = extremes(curve)
    assert bounds.max_profit >= values.max() - 1e-9
    assert bounds.max_loss <= values.min() + 1e-9
    assert bounds.unlimited_profit == (bounds.max_profit == math.inf)
    assert bounds.unlimited_loss == (bounds.max_loss == -math.inf)
    if curve.is_piecewise_linear:
        # The bounds are attained, at a kink or at the floor.
        nodes = np.concatenate([[0.0], curve.kinks])
        if not bounds.unlimited_profit:
            assert bounds.max_profit == pytest.approx(
                max(curve(nodes).max(), values.max()), abs=1e-9
            )
        if not bounds.unlimited_loss:
            assert bounds.max_loss == pytest.approx(min(curve(nodes).min(), values.min()), abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(positions(), _rates)
def test_expiry_breakevens_and_extremes_properties(
    legs: list[Leg], rates: tuple[float, float]
) -> None:
    _check_curve(pnl_curve(legs, r=rates[0], q=rates[1]))


@settings(max_examples=60, deadline=None)
@given(positions(calendars=True), _rates, st.sampled_from([0.0, 0.5, None]))
def test_smooth_curve_breakevens_and_extremes_properties(
    legs: list[Leg], rates: tuple[float, float], fraction: float | None
) -> None:
    horizon = None if fraction is None else fraction * T
    _check_curve(pnl_curve(legs, horizon=horizon, r=rates[0], q=rates[1]))


@settings(max_examples=60, deadline=None)
@given(positions(calendars=True), st.sampled_from([0.0, None]))
def test_a_position_plus_its_negation_is_flat_zero(legs: list[Leg], horizon: float | None) -> None:
    grid = np.linspace(0.0, 300.0, 301)
    total = pnl_curve(legs, horizon=horizon)(grid) + pnl_curve(_negated(legs), horizon=horizon)(
        grid
    )
    assert np.all(total == 0.0)
    mirrored = extremes(pnl_curve(_negated(legs), horizon=horizon))
    bounds = extremes(pnl_curve(legs, horizon=horizon))
    assert mirrored.max_profit == pytest.approx(-bounds.max_loss, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(_strikes, st.floats(0.02, 2.0), st.floats(0.05, 0.9), _rates, st.floats(20.0, 300.0))
def test_put_call_parity_long_call_short_put_is_a_long_forward(
    strike: float, expiry: float, iv: float, rates: tuple[float, float], spot: float
) -> None:
    r, q = rates
    c = float(price("call", spot, strike, expiry, r, iv, q))
    p = float(price("put", spot, strike, expiry, r, iv, q))
    synthetic: list[Leg] = [
        OptionLeg("call", strike, expiry, iv, 1, c),
        OptionLeg("put", strike, expiry, iv, -1, p),
    ]
    grid = np.linspace(1.0, 400.0, 57)
    # Today: the synthetic is worth S·e^{−qT} − K·e^{−rT}, a forward struck at K.
    forward_today = grid * math.exp(-q * expiry) - strike * math.exp(-r * expiry) - (c - p)
    scale = max(spot, strike)
    np.testing.assert_allclose(
        pnl_curve(synthetic, horizon=0.0, r=r, q=q)(grid), forward_today, atol=1e-10 * scale
    )
    # At expiry: exactly S − K − (C − P); hedged with a short future it is flat.
    at_expiry = pnl_curve(synthetic, r=r, q=q)
    np.testing.assert_allclose(at_expiry(grid), grid - strike - (c - p), atol=1e-10 * scale)
    hedge = FutureLeg(expiry, -1, spot * math.exp((r - q) * expiry))
    flat = pnl_curve([*synthetic, hedge], r=r, q=q)
    bounds = extremes(flat)
    assert bounds.max_profit == pytest.approx(bounds.max_loss, abs=1e-9 * scale)


def test_smooth_extremes_are_refined_between_grid_points() -> None:
    # Today's value of a long butterfly peaks smoothly between strikes, off any grid point.
    legs = [call(95.0, 1, 6.0), call(100.0, -2, 3.0), call(105.0, 1, 1.0)]
    curve = pnl_curve(legs, horizon=0.0, r=0.03)
    bounds = extremes(curve)
    fine = np.linspace(90.0, 110.0, 400_001)
    values = curve(fine)
    assert bounds.max_profit >= values.max() - 1e-12
    assert bounds.max_profit == pytest.approx(values.max(), abs=1e-9)


def test_smooth_breakevens_of_a_long_dated_high_vol_strangle_today() -> None:
    # The legs' tails reach e^{10σ√τ} ≈ 10^5 × the strikes, yet both roots lie between the
    # strikes, well inside one standard deviation: the search grid must stay fine there.
    vol, expiry = 0.9, 2.0
    legs = [put(30.0, 1, 0.0, expiry=expiry, iv=vol), call(2000.0, 1, 0.0, expiry=expiry, iv=vol)]
    lowest = float(np.min(pnl_curve(legs, horizon=0.0)(np.linspace(30.0, 2000.0, 19701))))
    legs = [dataclasses.replace(legs[0], entry_price=lowest + 2.0), legs[1]]
    curve = pnl_curve(legs, horizon=0.0)
    roots = breakevens(curve)
    fine = np.linspace(0.0, 4000.0, 400_001)
    values = curve(fine)
    crossings = np.flatnonzero(values[:-1] * values[1:] < 0)
    assert len(roots) == len(crossings) == 2
    for i, root in zip(crossings, roots, strict=True):
        assert 30.0 < fine[i] <= root <= fine[i + 1] < 2000.0
        assert abs(float(curve(root))) < 1e-8
