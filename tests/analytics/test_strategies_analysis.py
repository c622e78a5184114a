"""``analyze``: the one-call summary behind ``POST /api/v1/analytics/strategies/analyze``."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from quantdesk.analytics.strategies import (
    Leg,
    OptionLeg,
    UnderlyingLeg,
    analyze,
    mark_to_market,
    net_greeks,
    pnl_at,
)

T = 14 / 365
R, Q = 0.065, 0.012


def nifty_iron_condor() -> list[Leg]:
    """The worked example of docs/strategies.md: fills per unit, IVs implied from them."""
    return [
        OptionLeg("put", 23000.0, T, 0.148, quantity=1, entry_price=18.0, lot_size=75),
        OptionLeg("put", 23500.0, T, 0.123, quantity=-1, entry_price=52.0, lot_size=75),
        OptionLeg("call", 24500.0, T, 0.104, quantity=-1, entry_price=48.5, lot_size=75),
        OptionLeg("call", 25000.0, T, 0.121, quantity=1, entry_price=12.5, lot_size=75),
    ]


def test_worked_nifty_iron_condor() -> None:
    legs = nifty_iron_condor()
    result = analyze(legs, 24000.0, r=R, q=Q)
    # Credit 52 + 48.5 − 18 − 12.5 = 70 per unit, 75 units a lot.
    assert result.net_premium == -5250.0
    assert result.breakevens == (23430.0, 24570.0)
    assert (result.max_profit, result.max_loss) == (5250.0, -32250.0)
    assert not result.unlimited_profit
    assert not result.unlimited_loss
    assert result.expiry == T
    # The strikes 500 either side of the spot tie for nearest: their IVs are averaged.
    assert result.pop_vol == pytest.approx((0.123 + 0.104) / 2, rel=1e-15)
    vol = (0.123 + 0.104) / 2
    m, sd = math.log(24000.0) + (R - Q - vol**2 / 2) * T, vol * math.sqrt(T)
    pop = norm.cdf((math.log(24570.0) - m) / sd) - norm.cdf((math.log(23430.0) - m) / sd)
    assert result.probability_of_profit == pytest.approx(pop, rel=1e-12)
    grid = np.array(result.grid)
    for price, expected in [(23000.0, -32250.0), (23430.0, 0.0), (24000.0, 5250.0), (24570.0, 0.0)]:
        (i,) = np.flatnonzero(grid == price)  # strikes, breakevens and the spot are on the grid
        assert result.expiry_pnl[i] == pytest.approx(expected, abs=1e-9)
    assert np.all(np.diff(grid) > 0)
    np.testing.assert_array_equal(result.today_pnl, pnl_at(legs, grid, r=R, q=Q))
    assert result.net_greeks == net_greeks(legs, 24000.0, r=R, q=Q)
    assert result.horizon is None
    assert result.horizon_pnl is None


def test_default_grid_spans_the_strikes_and_four_standard_deviations() -> None:
    result = analyze(nifty_iron_condor(), 24000.0, r=R, q=Q, grid_points=11)
    sd = result.pop_vol * math.sqrt(T) if result.pop_vol else 0.0
    assert result.grid[0] == pytest.approx(min(23000.0 * 0.9, 24000.0 * math.exp(-4 * sd)))
    assert result.grid[-1] == pytest.approx(max(25000.0 * 1.1, 24000.0 * math.exp(4 * sd)))
    assert len(result.grid) == 11 + 7  # 4 strikes, 2 breakevens and the spot added


def test_explicit_grid_horizon_and_pop_inputs() -> None:
    legs = nifty_iron_condor()
    result = analyze(
        legs,
        24000.0,
        r=R,
        q=Q,
        grid=[23000.0, 24000.0, 25000.0],
        horizon=7 / 365,
        pop_vol=0.2,
        pop_drift=0.0,
    )
    assert result.grid == (23000.0, 23430.0, 23500.0, 24000.0, 24500.0, 24570.0, 25000.0)
    assert result.horizon_pnl == tuple(
        pnl_at(legs, result.grid, horizon=7 / 365, r=R, q=Q).tolist()
    )
    assert result.pop_vol == 0.2
    m, sd = math.log(24000.0) - 0.02 * T, 0.2 * math.sqrt(T)
    pop = norm.cdf((math.log(24570.0) - m) / sd) - norm.cdf((math.log(23430.0) - m) / sd)
    assert result.probability_of_profit == pytest.approx(pop, rel=1e-12)


def test_result_serialises_to_json_with_flags_for_unbounded_sides() -> None:
    legs: list[Leg] = [OptionLeg("call", 100.0, 0.1, 0.3, quantity=-1, entry_price=2.0)]
    result = analyze(legs, 100.0)
    assert (result.max_profit, result.max_loss, result.unlimited_loss) == (2.0, -math.inf, True)
    payload = dataclasses.asdict(result)
    assert payload["net_greeks"]["delta"] == result.net_greeks.delta
    text = json.dumps(
        {k: (None if v == -math.inf else v) for k, v in payload.items()}, allow_nan=False
    )
    assert json.loads(text)["unlimited_loss"] is True


def test_underlying_only_has_no_pop_unless_a_vol_is_given() -> None:
    stock: list[Leg] = [UnderlyingLeg(quantity=10, entry_price=95.0)]
    result = analyze(stock, 100.0, grid_points=3)
    assert result.probability_of_profit is None
    assert result.expiry == 0.0
    assert result.grid == pytest.approx(
        (90.0, 95.0, 100.0, 110.0), rel=1e-15
    )  # ±10% of the spot, the breakeven added
    assert result.expiry_pnl == result.today_pnl
    assert result.expiry_pnl == pytest.approx((-50.0, 0.0, 50.0, 150.0), rel=1e-14)
    assert result.unlimited_profit
    assert result.max_loss == -950.0
    assert analyze(stock, 100.0, pop_vol=0.3).probability_of_profit == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spot": 0.0}, "spot must be > 0"),
        ({"spot": 100.0, "grid_points": 1}, "grid_points must be >= 2"),
        ({"spot": 100.0, "grid": []}, "non-empty"),
    ],
)
def test_analyze_refuses_bad_inputs(kwargs: dict[str, object], message: str) -> None:
    legs: list[Leg] = [OptionLeg("call", 100.0, 0.1, 0.3, quantity=1, entry_price=2.0)]
    with pytest.raises(ValueError, match=message):
        analyze(legs, **kwargs)  # type: ignore[arg-type]


def test_docs_worked_example_figures() -> None:
    """The rounded figures printed in docs/strategies.md."""
    legs = nifty_iron_condor()
    result = analyze(legs, 24000.0, r=R, q=Q, horizon=7 / 365)
    assert result.probability_of_profit == pytest.approx(0.7127, abs=5e-5)
    i = result.grid.index(24000.0)
    assert result.today_pnl[i] == pytest.approx(52.52, abs=0.005)
    assert result.horizon_pnl is not None
    assert result.horizon_pnl[i] == pytest.approx(3119.16, abs=0.005)
    g = result.net_greeks
    assert (round(g.delta, 2), round(g.gamma, 4), round(g.vega / 100)) == (-1.92, -0.0461, -1017)
    assert (round(g.theta / 365), round(g.rho / 100, 1)) == (354, -15.7)
    assert mark_to_market(legs, [12.0, 35.5, 41.0, 8.0]).leg_pnl == (-450.0, 1237.5, 562.5, -337.5)
