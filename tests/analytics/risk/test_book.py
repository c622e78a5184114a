"""Option-book scenarios: full revaluation against leg-by-leg repricing, the Greeks
approximation near the centre, expiry within the horizon, and the seeded Monte Carlo VaR."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantdesk.analytics.options import price
from quantdesk.analytics.risk import BookLeg, OptionBook, book_monte_carlo_var, scenario_grid

R, Q = 0.065, 0.01


def straddle_and_hedge() -> OptionBook:
    legs = [
        BookLeg("NIFTY", "call", -75.0, strike=24000, expiry=30 / 365, iv=0.14),
        BookLeg("NIFTY", "put", -75.0, strike=24000, expiry=30 / 365, iv=0.15),
        BookLeg("NIFTY", "future", 25.0, expiry=30 / 365),
        BookLeg("BANKNIFTY", "put", 30.0, strike=50000, expiry=9 / 365, iv=0.18),
        BookLeg("BANKNIFTY", "underlying", 10.0),
    ]
    return OptionBook.of(
        legs, {"NIFTY": 24100.0, "BANKNIFTY": 50500.0}, rate=R, dividend_yield={"NIFTY": Q}
    )


def leg_value(kind: str, s: float, k: float, t: float, iv: float, q: float) -> float:
    return float(price(kind, s, k, t, R, iv, q))


def test_grid_is_full_revaluation_leg_by_leg() -> None:
    book = straddle_and_hedge()
    grid = scenario_grid(book, [-0.1, 0.0, 0.05], [-0.5, 0.0, 0.2], days=[0, 5, 10])
    assert grid.pnl.shape == (3, 3, 3)
    assert np.all(grid.pnl[0, 1, 1] == 0.0)
    m, _v, d = 0.05, 0.2, 10
    tau = d / 365
    s1, s2 = 24100 * (1 + m), 50500 * (1 + m)
    # BANKNIFTY's 9-day put has expired after 10 days: worth its intrinsic value at s2.
    expected = (
        -75 * (leg_value("call", s1, 24000, 30 / 365 - tau, 0.14 * 1.2, Q)
               - leg_value("call", 24100, 24000, 30 / 365, 0.14, Q))
        - 75 * (leg_value("put", s1, 24000, 30 / 365 - tau, 0.15 * 1.2, Q)
                - leg_value("put", 24100, 24000, 30 / 365, 0.15, Q))
        + 25 * (s1 * math.exp((R - Q) * (30 / 365 - tau)) - 24100 * math.exp((R - Q) * 30 / 365))
        + 30 * (max(50000 - s2, 0.0) - leg_value("put", 50500, 50000, 9 / 365, 0.18, 0.0))
        + 10 * (s2 - 50500)
    )  # fmt: skip
    assert grid.pnl[2, 2, 2] == pytest.approx(expected, rel=1e-12)
    pnl, move, iv_change, days = grid.worst
    assert pnl == grid.pnl.min()
    assert grid.pnl[list(grid.days).index(days), list(grid.spot_moves).index(move),
                    list(grid.iv_changes).index(iv_change)] == pnl  # fmt: skip


def test_greeks_approximation_is_close_near_the_centre_and_drifts_away() -> None:
    book = straddle_and_hedge()
    grid = scenario_grid(book)  # 41 x 21 default grid, today
    assert grid.pnl.shape == (1, 41, 21)
    assert grid.spot_moves[0] == pytest.approx(-0.2)
    assert grid.iv_changes[-1] == pytest.approx(0.5)
    centre = grid.greeks_pnl[0, 20, 10]
    assert centre == pytest.approx(0.0, abs=1e-9)
    small = abs(grid.pnl[0, 21, 11] - grid.greeks_pnl[0, 21, 11])  # +1% spot, +5% IV
    large = abs(grid.pnl[0, 0, 0] - grid.greeks_pnl[0, 0, 0])  # -20% spot, -50% IV
    assert small < 0.001 * np.abs(grid.pnl).max()
    assert large > 10 * small


def test_book_validation() -> None:
    with pytest.raises(ValueError, match="strike"):
        BookLeg("X", "call", 1.0, strike=100, expiry=0.0, iv=0.2)
    with pytest.raises(ValueError, match="no spot"):
        OptionBook.of([BookLeg("X", "underlying", 1.0)], {})
    with pytest.raises(ValueError, match="-100%"):
        scenario_grid(OptionBook.of([BookLeg("X", "underlying", 1.0)], {"X": 1.0}), [-1.0])


def test_monte_carlo_var_of_the_book() -> None:
    book = straddle_and_hedge()
    corr = np.array([[1.0, 0.8], [0.8, 1.0]])
    first = book_monte_carlo_var(book, [0.2, 0.15], corr, 0.99, days=1, simulations=4000, seed=9)
    again = book_monte_carlo_var(book, [0.2, 0.15], corr, 0.99, days=1, simulations=4000, seed=9)
    assert first == again
    assert first.cvar >= first.var > 0
    assert first.worst_pnl <= -first.var
    # A book of the underlying alone: the normal-limit VaR of 100 units at 20% vol over a day.
    stock = OptionBook.of([BookLeg("X", "underlying", 100.0)], {"X": 50.0})
    mc = book_monte_carlo_var(stock, [0.2], confidence=0.99, days=1, simulations=40_000, seed=1)
    normal = 100 * 50 * 0.2 * math.sqrt(1 / 365) * 2.3263478740408408
    assert mc.var == pytest.approx(normal, rel=0.04)
    with pytest.raises(ValueError, match="correlation"):
        book_monte_carlo_var(book, [0.2, 0.15], np.eye(3))


def long_short_pair() -> OptionBook:
    # 4,000 of A long against 4,000 of B short, futures at zero carry (rate and yield 0).
    legs = [
        BookLeg("A", "future", 40.0, expiry=30 / 365),
        BookLeg("B", "future", -20.0, expiry=30 / 365),
    ]
    return OptionBook.of(legs, {"A": 100.0, "B": 200.0})


@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_book_var_of_a_long_short_pair_is_z_sigma_of_the_spread(rho: float) -> None:
    # Over one day the P&L is 4000 R_A - 4000 R_B, normal to first order in sigma sqrt(tau):
    # sd = sqrt(tau (x_A^2 + x_B^2 - 2 rho x_A x_B)) with x = exposure x volatility;
    # VaR = z sd, CVaR = sd phi(z) / alpha.  The lognormal's curvature and the sampling error
    # of 100,000 paths (0.5% at 99%) stay inside 3%; rho = 0.9 shrinks the figure 2.9 times.
    x_a, x_b = 4000 * 0.25, 4000 * 0.20
    sd = math.sqrt((x_a**2 + x_b**2 - 2 * rho * x_a * x_b) / 365)
    z = 2.3263478740408408  # the 99% normal quantile
    mc = book_monte_carlo_var(
        long_short_pair(), [0.25, 0.20], [[1.0, rho], [rho, 1.0]], 0.99,
        days=1, simulations=100_000, seed=5,
    )  # fmt: skip
    assert mc.var == pytest.approx(z * sd, rel=0.03)
    assert mc.cvar == pytest.approx(
        sd * math.exp(-z * z / 2) / math.sqrt(2 * math.pi) / 0.01, rel=0.03
    )
    assert mc.expected_pnl == pytest.approx(0.0, abs=0.02 * sd)


def test_correlation_of_the_pair_changes_its_var_as_the_closed_form_says() -> None:
    figures = {
        rho: book_monte_carlo_var(
            long_short_pair(),
            [0.25, 0.20],
            [[1.0, rho], [rho, 1.0]],
            0.99,
            days=1,
            simulations=100_000,
            seed=5,
        ).var
        for rho in (0.0, 0.9)
    }
    # sqrt((1000^2 + 800^2) / (1000^2 + 800^2 - 2 x 0.9 x 1000 x 800)) = sqrt(8.2) = 2.864.
    assert figures[0.0] / figures[0.9] == pytest.approx(math.sqrt(8.2), rel=0.04)
    # Without a correlation the underlyings are independent: the same draws as rho = 0.
    independent = book_monte_carlo_var(
        long_short_pair(), [0.25, 0.20], None, 0.99, days=1, simulations=100_000, seed=5
    )
    assert independent.var == figures[0.0]
