"""Futures analytics: hand-worked values and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.analytics.futures import (
    Buildup,
    annualised_basis,
    basis,
    buildup_labels,
    calendar_spread,
    fair_value,
    oi_buildup,
    rollover_pct,
)


def test_basis_and_calendar_spread() -> None:
    np.testing.assert_allclose(basis([22050.0, 21980.0], 22000.0), [50.0, -20.0])
    np.testing.assert_allclose(calendar_spread(22180.0, 22050.0), 130.0)


def test_annualised_basis_continuous_and_simple() -> None:
    # F = 101, S = 100, half a year: continuous ln(1.01)/0.5 = 0.0199006617, simple 0.01/0.5.
    assert float(annualised_basis(101.0, 100.0, 0.5)) == pytest.approx(
        0.019900661706336174, abs=1e-15
    )
    assert float(annualised_basis(101.0, 100.0, 0.5, compounding="simple")) == pytest.approx(
        0.02, abs=1e-15
    )
    np.testing.assert_array_equal(
        np.isnan(annualised_basis(101.0, 100.0, [0.0, -1.0, 1.0])), [True, True, False]
    )
    with pytest.raises(ValueError, match="compounding"):
        annualised_basis(101.0, 100.0, 0.5, compounding="monthly")


def test_fair_value_with_yield_and_discrete_dividends() -> None:
    # No dividends: 100·e^{(0.07-0.02)·0.25}.
    assert float(fair_value(100.0, 0.25, 0.07, 0.02)) == pytest.approx(
        100.0 * math.exp(0.0125), abs=1e-12
    )
    # One dividend of 2 at t = 0.5 before a 1-year expiry at r = 10%:
    # PV = 2·e^{-0.05} = 1.9024588490; F = (100 - 1.9024588490)·e^{0.1} = 108.4145...
    expected = (100.0 - 2.0 * math.exp(-0.05)) * math.exp(0.1)
    assert float(
        fair_value(100.0, 1.0, 0.1, dividends=[2.0], dividend_times=[0.5])
    ) == pytest.approx(expected, abs=1e-12)
    # A dividend after expiry (or already paid) does not count.
    fv = fair_value(100.0, [0.4, 1.0], 0.1, dividends=[2.0, 5.0], dividend_times=[0.5, -0.1])
    np.testing.assert_allclose(fv, [100.0 * math.exp(0.04), expected], atol=1e-12)
    with pytest.raises(ValueError, match="same length"):
        fair_value(100.0, 1.0, 0.1, dividends=[1.0, 2.0], dividend_times=[0.5])


def test_rollover_percentage() -> None:
    # near 600, next 400 → 40%; with 100 in the far month, (400+100)/1100 = 45.45%.
    np.testing.assert_allclose(rollover_pct(600.0, 400.0), 40.0)
    np.testing.assert_allclose(rollover_pct(600.0, 400.0, 100.0), 500.0 / 1100.0 * 100.0)
    assert np.isnan(rollover_pct(0.0, 0.0))


def test_oi_buildup_hand_table() -> None:
    price_change = [1.5, -2.0, 0.5, -0.5, 0.0, 1.0, math.nan]
    oi_change = [100, 50, -10, -20, 500, 0, 10]
    codes = oi_buildup(price_change, oi_change)
    assert codes.dtype == np.int8
    np.testing.assert_array_equal(
        codes,
        [
            Buildup.LONG_BUILDUP,
            Buildup.SHORT_BUILDUP,
            Buildup.SHORT_COVERING,
            Buildup.LONG_UNWINDING,
            Buildup.NEUTRAL,
            Buildup.NEUTRAL,
            Buildup.NEUTRAL,
        ],
    )
    assert list(buildup_labels(codes[:4])) == [
        "long buildup",
        "short buildup",
        "short covering",
        "long unwinding",
    ]
    assert Buildup.NEUTRAL.label == "neutral"


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_buildup_mirrors_when_the_price_move_flips(dp: float, doi: float) -> None:
    mirror = {
        Buildup.NEUTRAL: Buildup.NEUTRAL,
        Buildup.LONG_BUILDUP: Buildup.SHORT_BUILDUP,
        Buildup.SHORT_BUILDUP: Buildup.LONG_BUILDUP,
        Buildup.SHORT_COVERING: Buildup.LONG_UNWINDING,
        Buildup.LONG_UNWINDING: Buildup.SHORT_COVERING,
    }
    assert Buildup(int(oi_buildup(-dp, doi))) == mirror[Buildup(int(oi_buildup(dp, doi)))]
    # Positions opened (OI up) never read as covering/unwinding, and vice versa.
    code = Buildup(int(oi_buildup(dp, doi)))
    if doi > 0 and dp != 0:
        assert code in {Buildup.LONG_BUILDUP, Buildup.SHORT_BUILDUP}
    if doi < 0 and dp != 0:
        assert code in {Buildup.SHORT_COVERING, Buildup.LONG_UNWINDING}


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 1e5), st.floats(0.01, 2.0), st.floats(-0.05, 0.2), st.floats(0.0, 0.05))
def test_fair_value_and_implied_carry_are_inverse(S: float, t: float, r: float, q: float) -> None:
    F = fair_value(S, t, r, q)
    assert float(annualised_basis(F, S, t)) == pytest.approx(r - q, abs=1e-12)
    simple = float(annualised_basis(F, S, t, compounding="simple"))
    assert float(F) == pytest.approx(S * (1.0 + simple * t), rel=1e-12)
