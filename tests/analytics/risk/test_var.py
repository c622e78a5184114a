"""VaR and CVaR: every quantile rule against the library that uses it, hand-worked
Cornish-Fisher, Euler component VaR, seeded Monte Carlo, and monotonicity properties."""

from __future__ import annotations

import math
import warnings

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
import quantstats as qs
import riskfolio as rf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from skfolio import measures as skm

from quantdesk.analytics import risk

TOL = 1e-9


@pytest.fixture(scope="module")
def daily() -> np.ndarray:
    return np.random.default_rng(11).standard_t(3, 501) * 0.012 + 0.0003


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_historical_rules_match_their_libraries(daily: np.ndarray, confidence: float) -> None:
    alpha = round(1 - confidence, 10)
    # empyrical: np.percentile (linear) and the mean of the int((n-1) alpha) + 1 worst.
    assert risk.historical_var(daily, confidence) == pytest.approx(
        -ep.value_at_risk(daily, alpha), abs=TOL
    )
    assert risk.historical_cvar(daily, confidence) == pytest.approx(
        -ep.conditional_value_at_risk(daily, alpha), abs=TOL
    )
    # riskfolio-lib and skfolio: the lower order statistic and Rockafellar-Uryasev.
    assert risk.historical_var(daily, confidence, method="lower") == pytest.approx(
        rf.RiskFunctions.VaR_Hist(daily, alpha), abs=TOL
    )
    assert risk.historical_cvar(daily, confidence, method="rockafellar_uryasev") == pytest.approx(
        rf.RiskFunctions.CVaR_Hist(daily, alpha), abs=TOL
    )
    assert risk.historical_var(daily, confidence, method="lower") == pytest.approx(
        skm.value_at_risk(daily, confidence), abs=TOL
    )
    assert risk.historical_cvar(daily, confidence, method="rockafellar_uryasev") == pytest.approx(
        skm.cvar(daily, confidence), abs=TOL
    )


def test_parametric_and_tail_mean_match_quantstats(daily: np.ndarray) -> None:
    s = pd.Series(daily, index=pd.bdate_range("2023-01-02", periods=daily.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert risk.parametric_var(daily, 0.95) == pytest.approx(
            -qs.stats.value_at_risk(s, confidence=0.95), abs=TOL
        )
        assert risk.parametric_cvar(daily, 0.99) == pytest.approx(
            -qs.stats.cvar(s, confidence=0.99), abs=TOL
        )
        assert risk.historical_cvar(daily, 0.95, method="tail_mean") == pytest.approx(
            -qs.stats.cvar(s, confidence=0.95, method="historical"), abs=TOL
        )


def test_hand_worked_historical_and_horizon() -> None:
    r = np.arange(1, 21) / 100.0 - 0.105  # -0.095, -0.085, ..., 0.095
    # 95% of 20 points: linear quantile at position 0.95, between -0.095 and -0.085.
    assert risk.historical_var(r, 0.95) == pytest.approx(0.095 - 0.95 * 0.01)
    assert risk.historical_var(r, 0.95, method="lower") == pytest.approx(0.095)
    assert risk.historical_var(r, 0.95, horizon=4) == pytest.approx(2 * (0.095 - 0.0095))
    assert risk.historical_cvar(r, 0.90, method="rockafellar_uryasev") == pytest.approx(0.09)


def test_cornish_fisher_hand_worked(daily: np.ndarray) -> None:
    mu, sd = daily.mean(), daily.std(ddof=1)
    s, k = stats.skew(daily), stats.kurtosis(daily)
    z = stats.norm.ppf(0.01)
    z_cf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    assert risk.cornish_fisher_var(daily, 0.99) == pytest.approx(-(mu + sd * z_cf), abs=1e-15)
    # Symmetric, mesokurtic data: the correction vanishes (here, exactly symmetric points).
    sym = np.concatenate([-daily, daily])
    assert stats.skew(sym) == pytest.approx(0, abs=1e-12)
    ten_day = risk.parametric_var(daily, 0.99, horizon=10)
    assert ten_day == pytest.approx(-(10 * mu + math.sqrt(10) * sd * z))


def test_component_var_adds_up_and_is_the_gradient() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 4))
    cov = (a @ a.T + np.eye(4)) * 1e-4
    mean = np.array([0.0005, 0.0002, -0.0001, 0.0003])
    w = np.array([0.4, 0.3, 0.2, 0.1])
    c = risk.component_var(w, cov, mean, 0.99, horizon=5)
    z = stats.norm.ppf(0.01)
    expected = -(w @ mean) * 5 - z * math.sqrt(5) * math.sqrt(w @ cov @ w)
    assert c.var == pytest.approx(expected, rel=1e-12)
    assert c.component.sum() == pytest.approx(c.var, rel=1e-12)
    assert c.percent.sum() == pytest.approx(1.0)
    h = 1e-6
    for i in range(4):
        up, down = w.copy(), w.copy()
        up[i] += h
        down[i] -= h
        fd = (
            risk.component_var(up, cov, mean, 0.99, horizon=5).var
            - risk.component_var(down, cov, mean, 0.99, horizon=5).var
        ) / (2 * h)
        assert c.marginal[i] == pytest.approx(fd, rel=1e-6)


def test_monte_carlo_is_seeded_and_converges_to_the_normal_figure() -> None:
    cov = np.array([[1.0, 0.5], [0.5, 2.0]]) * 1e-4
    mean = np.array([0.0003, 0.0001])
    w = np.array([0.6, 0.4])
    first = risk.monte_carlo_var(mean, cov, w, 0.99, simulations=50_000, seed=3)
    assert first == risk.monte_carlo_var(mean, cov, w, 0.99, simulations=50_000, seed=3)
    exact = risk.component_var(w, cov, mean, 0.99).var
    assert first.var == pytest.approx(exact, rel=0.03)
    assert first.cvar > first.var


returns_arrays = hnp.arrays(
    np.float64,
    st.integers(10, 200),
    elements=st.floats(-0.2, 0.2, allow_nan=False, allow_subnormal=False),
)


@settings(max_examples=60, deadline=None)
@given(returns_arrays, st.floats(0.5, 0.98), st.floats(0.001, 0.019))
def test_var_is_monotone_in_confidence(r: np.ndarray, low: float, step: float) -> None:
    high = low + step
    for method in ("linear", "lower"):
        assert (
            risk.historical_var(r, high, method=method)
            >= risk.historical_var(
                r,
                low,
                method=method,
            )
            - 1e-15
        )
    assert risk.parametric_var(r, high) >= risk.parametric_var(r, low) - 1e-15
    assert (
        risk.historical_cvar(r, low, method="rockafellar_uryasev")
        >= risk.historical_var(r, low, method="lower") - 1e-15
    )
    assert risk.parametric_cvar(r, low) >= risk.parametric_var(r, low) - 1e-15


def test_bad_confidence_is_refused(daily: np.ndarray) -> None:
    with pytest.raises(ValueError, match="confidence"):
        risk.historical_var(daily, 1.0)
