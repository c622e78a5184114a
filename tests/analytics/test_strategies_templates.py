"""Strategy templates: each checked against its textbook shape (max P/L, breakevens)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from quantdesk.analytics.options import price
from quantdesk.analytics.strategies import (
    Leg,
    OptionLeg,
    UnderlyingLeg,
    breakevens,
    extremes,
    pnl_curve,
)
from quantdesk.analytics.strategies import templates as tpl

Builder = Callable[..., tuple[Leg, ...]]
T = 21 / 365
NIFTY = tpl.Market(spot=24000.0, iv=0.13, r=0.065, q=0.012)


def shape(legs: tuple[Leg, ...]) -> tuple[tuple[float, ...], float, float]:
    curve = pnl_curve(legs, r=NIFTY.r, q=NIFTY.q)
    bounds = extremes(curve)
    return breakevens(curve), bounds.max_profit, bounds.max_loss


def assert_shape(
    legs: tuple[Leg, ...], roots: tuple[float, ...], best: float, worst: float
) -> None:
    """Breakevens to 1e-9 and max profit/loss to 1e-12 relative (infinities exactly)."""
    got_roots, got_best, got_worst = shape(legs)
    assert got_roots == pytest.approx(roots, abs=1e-9)
    assert got_best == (best if math.isinf(best) else pytest.approx(best, rel=1e-12))
    assert got_worst == (worst if math.isinf(worst) else pytest.approx(worst, rel=1e-12))


def premium(legs: tuple[Leg, ...]) -> float:
    """Net premium per strategy unit: > 0 paid (debit), < 0 received (credit)."""
    return sum(leg.entry_price * leg.quantity for leg in legs if isinstance(leg, OptionLeg))


def test_legs_are_priced_with_the_options_module_and_scaled_by_lots() -> None:
    legs = tpl.long_straddle(24000.0, expiry=T, market=NIFTY, lots=3, lot_size=75)
    assert [
        (leg.kind, leg.quantity, leg.lot_size) for leg in legs if isinstance(leg, OptionLeg)
    ] == [
        ("call", 3.0, 75),
        ("put", 3.0, 75),
    ]
    expected = price(["call", "put"], 24000.0, 24000.0, T, 0.065, 0.13, 0.012)
    assert [leg.entry_price for leg in legs] == expected.tolist()
    # A smile gives each strike its own vol.
    smile = tpl.Market(spot=100.0, iv=lambda strike, expiry: 0.2 + 0.001 * abs(strike - 100.0))
    wings = tpl.long_strangle(90.0, 110.0, expiry=T, market=smile)
    assert [leg.iv for leg in wings if isinstance(leg, OptionLeg)] == pytest.approx([0.21, 0.21])


def test_long_straddle() -> None:
    legs = tpl.long_straddle(24000.0, expiry=T, market=NIFTY, lots=2, lot_size=75)
    paid = premium(legs) / 2  # per lot unit: two lots were bought
    assert_shape(legs, (24000.0 - paid, 24000.0 + paid), math.inf, -paid * 150)


def test_short_straddle_with_fills() -> None:
    legs = tpl.short_straddle(100.0, expiry=T, market=NIFTY, entry_prices=[3.0, 2.5], lot_size=10)
    assert_shape(legs, (94.5, 105.5), 55.0, -math.inf)


def test_long_and_short_strangle() -> None:
    legs = tpl.long_strangle(23500.0, 24500.0, expiry=T, market=NIFTY)
    paid = premium(legs)
    assert_shape(legs, (23500.0 - paid, 24500.0 + paid), math.inf, -paid)
    short = tpl.short_strangle(23500.0, 24500.0, expiry=T, market=NIFTY)
    assert_shape(short, (23500.0 - paid, 24500.0 + paid), paid, -math.inf)


def test_vertical_spreads() -> None:
    width = 500.0
    debit = premium(bull_call := tpl.bull_call_spread(23800.0, 24300.0, expiry=T, market=NIFTY))
    assert debit > 0
    assert_shape(bull_call, (23800.0 + debit,), width - debit, -debit)

    credit = -premium(bear_call := tpl.bear_call_spread(23800.0, 24300.0, expiry=T, market=NIFTY))
    assert credit > 0
    assert_shape(bear_call, (23800.0 + credit,), credit, credit - width)

    credit = -premium(bull_put := tpl.bull_put_spread(23700.0, 24200.0, expiry=T, market=NIFTY))
    assert credit > 0
    assert_shape(bull_put, (24200.0 - credit,), credit, credit - width)

    debit = premium(bear_put := tpl.bear_put_spread(23700.0, 24200.0, expiry=T, market=NIFTY))
    assert debit > 0
    assert_shape(bear_put, (24200.0 - debit,), width - debit, -debit)


def test_iron_condor_max_profit_is_the_credit() -> None:
    legs = tpl.iron_condor(23000.0, 23500.0, 24500.0, 25000.0, expiry=T, market=NIFTY, lot_size=75)
    credit = -premium(legs)
    assert credit > 0
    assert_shape(legs, (23500.0 - credit, 24500.0 + credit), 75 * credit, -75 * (500.0 - credit))


def test_iron_butterfly() -> None:
    legs = tpl.iron_butterfly(24000.0, 400.0, expiry=T, market=NIFTY)
    assert [leg.strike for leg in legs if isinstance(leg, OptionLeg)] == [
        23600.0,
        24000.0,
        24000.0,
        24400.0,
    ]
    credit = -premium(legs)
    assert_shape(legs, (24000.0 - credit, 24000.0 + credit), credit, credit - 400.0)


@pytest.mark.parametrize("builder", [tpl.call_butterfly, tpl.put_butterfly])
def test_butterflies(builder: Builder) -> None:
    legs = builder(23700.0, 24000.0, 24300.0, expiry=T, market=NIFTY)
    assert [leg.quantity for leg in legs] == [1.0, -2.0, 1.0]
    debit = premium(legs)
    assert debit > 0
    assert_shape(legs, (23700.0 + debit, 24300.0 - debit), 300.0 - debit, -debit)


@pytest.mark.parametrize("builder", [tpl.call_calendar, tpl.put_calendar])
def test_calendars_peak_at_the_strike_when_the_near_leg_expires(builder: Builder) -> None:
    market = tpl.Market(spot=100.0, iv=0.25)  # no carry, so the worst case is the debit
    legs = builder(100.0, near_expiry=T, far_expiry=3 * T, market=market)
    near, far = legs
    assert isinstance(near, OptionLeg)
    assert isinstance(far, OptionLeg)
    assert (near.quantity, near.expiry, far.quantity, far.expiry) == (-1.0, T, 1.0, 3 * T)
    debit = premium(legs)
    curve = pnl_curve(legs)
    roots = breakevens(curve)
    assert len(roots) == 2
    assert roots[0] < 100.0 < roots[1]
    bounds = extremes(curve)
    peak = float(price(near.kind, 100.0, 100.0, 2 * T, 0.0, 0.25)) - debit
    assert bounds.max_profit == pytest.approx(peak, rel=1e-12)
    assert bounds.max_loss == pytest.approx(-debit, rel=1e-9)


def test_covered_call() -> None:
    s, k = 24000.0, 24500.0
    legs = tpl.covered_call(k, expiry=T, market=NIFTY, lots=2, lot_size=75)
    stock, short_call = legs
    assert isinstance(stock, UnderlyingLeg)
    assert (stock.entry_price, stock.quantity, stock.lot_size) == (s, 2.0, 75)
    received = short_call.entry_price
    assert_shape(legs, (s - received,), (k - s + received) * 150, -(s - received) * 150)


def test_protective_put() -> None:
    s, k = 24000.0, 23500.0
    legs = tpl.protective_put(k, expiry=T, market=NIFTY)
    paid = legs[1].entry_price
    assert_shape(legs, (s + paid,), math.inf, -(s - k + paid))


def test_collar() -> None:
    kp, kc = 23500.0, 24500.0
    legs = tpl.collar(kp, kc, expiry=T, market=NIFTY, entry_prices=[24010.0, 60.0, 75.0])
    net = 60.0 - 75.0
    assert_shape(legs, (24010.0 + net,), kc - 24010.0 - net, kp - 24010.0 - net)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: tpl.long_strangle(110.0, 90.0, expiry=T, market=NIFTY), "strictly increasing"),
        (
            lambda: tpl.iron_condor(1.0, 3.0, 2.0, 4.0, expiry=T, market=NIFTY),
            "strictly increasing",
        ),
        (lambda: tpl.iron_butterfly(100.0, 100.0, expiry=T, market=NIFTY), "width must be"),
        (lambda: tpl.long_straddle(100.0, expiry=T, market=NIFTY, lots=-1), "lots must be > 0"),
        (
            lambda: tpl.short_straddle(100.0, expiry=T, market=NIFTY, entry_prices=[1.0]),
            "1 entry prices",
        ),
        (lambda: tpl.call_calendar(100.0, near_expiry=T, far_expiry=T, market=NIFTY), "before far"),
    ],
)
def test_templates_refuse_malformed_parameters(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=message):
        build()
