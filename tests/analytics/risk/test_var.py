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


# Twelve days of small gains and one crash: skewed left (S = -2.73) with fat tails (K = 6.04).
CRASH = np.array(
    [0.004, 0.006, -0.002, 0.005, 0.003, -0.045, 0.007, 0.002, -0.004, 0.006, 0.001, 0.005]
)
# The worked example of docs/risk.md: skewed left (S = -0.64), thin-tailed (K = -0.80).
TEN_DAYS = np.array([0.01, -0.02, 0.015, -0.005, 0.007, -0.03, 0.012, 0.004, -0.011, 0.02])


def modified_var(r: np.ndarray, confidence: float, horizon: int = 1) -> float:
    """Cornish-Fisher (modified) VaR as published (Zangari 1996; Favre & Galeano 2002), from
    the central moments written out, not from quantdesk."""
    n = r.size
    mu = r.sum() / n
    dev = r - mu
    m2, m3, m4 = (dev**2).mean(), (dev**3).mean(), (dev**4).mean()
    s, k = m3 / m2**1.5, m4 / m2**2 - 3.0
    # The population moments the module documents are scipy.stats' defaults.
    assert s == pytest.approx(stats.skew(r), abs=1e-12)
    assert k == pytest.approx(stats.kurtosis(r), abs=1e-12)
    sd = math.sqrt((dev**2).sum() / (n - 1))
    z = stats.norm.ppf(1.0 - confidence)
    z_cf = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    return float(-(mu * horizon + sd * math.sqrt(horizon) * z_cf))


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
@pytest.mark.parametrize("horizon", [1, 10])
def test_cornish_fisher_is_the_published_formula(
    daily: np.ndarray, confidence: float, horizon: int
) -> None:
    for r in (CRASH, TEN_DAYS, daily):
        assert risk.cornish_fisher_var(r, confidence, horizon=horizon) == pytest.approx(
            modified_var(r, confidence, horizon), abs=1e-15
        )


def test_cornish_fisher_hand_worked_with_skew_and_fat_tails() -> None:
    # mu = -0.001, sigma = 0.014251, S = -2.734722, K = 6.042268, z(5%) = -1.644854:
    # z_cf = z + (z^2 - 1) S / 6 + (z^3 - 3z) K / 24 - (2z^3 - 5z) S^2 / 36
    #      = -1.644854 - 0.777364 + 0.121937 + 0.140470 = -2.159810.
    assert stats.skew(CRASH) == pytest.approx(-2.7347218207600337, abs=1e-12)
    assert stats.kurtosis(CRASH) == pytest.approx(6.042267744606228, abs=1e-12)
    z = -1.6448536269514729
    s, k = -2.7347218207600337, 6.042267744606228
    z_cf = z + (z * z - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s * s / 36
    assert z_cf == pytest.approx(-2.159810, abs=1e-6)
    expected = 0.001 - 0.014250996775345543 * z_cf
    assert expected == pytest.approx(0.0317794491971, abs=1e-12)
    assert risk.cornish_fisher_var(CRASH, 0.95) == pytest.approx(expected, abs=1e-15)
    # The crash fattens the left tail: the modified VaR is beyond the normal one.
    assert risk.cornish_fisher_var(CRASH, 0.95) > risk.parametric_var(CRASH, 0.95) + 0.007
    # docs/risk.md's worked example, 90%.
    assert risk.cornish_fisher_var(TEN_DAYS, 0.9) == pytest.approx(0.023089170354933, abs=1e-14)


@pytest.mark.parametrize("confidence", [0.95, 0.99])
@pytest.mark.parametrize("horizon", [1, 10])
def test_cornish_fisher_without_skew_or_excess_kurtosis_is_the_normal_var(
    confidence: float, horizon: int
) -> None:
    # {-a, 0, 0, 0, 0, a}: symmetric, and m4 / m2^2 = 6 / 2 = 3, a normal's kurtosis.
    r = 0.001 + 0.02 * np.array([0.0, -1.0, 0.0, 1.0, 0.0, 0.0])
    assert stats.skew(r) == pytest.approx(0.0, abs=1e-12)
    assert stats.kurtosis(r) == pytest.approx(0.0, abs=1e-12)
    normal = -(
        0.001 * horizon + r.std(ddof=1) * math.sqrt(horizon) * stats.norm.ppf(1 - confidence)
    )
    assert risk.cornish_fisher_var(r, confidence, horizon=horizon) == pytest.approx(
        normal, abs=1e-14
    )
    assert risk.parametric_var(r, confidence, horizon=horizon) == pytest.approx(normal, abs=1e-15)


def test_horizons_scale_the_mean_by_h_and_sigma_by_root_h() -> None:
    mu, sd = CRASH.mean(), CRASH.std(ddof=1)
    one, ten = (
        risk.cornish_fisher_var(CRASH, 0.99),
        risk.cornish_fisher_var(CRASH, 0.99, horizon=10),
    )
    # The corrected quantile is the same at every horizon: only mu h and sigma sqrt(h) change.
    assert (ten + 10 * mu) / (one + mu) == pytest.approx(math.sqrt(10), rel=1e-12)
    z = stats.norm.ppf(0.01)
    assert risk.parametric_var(CRASH, 0.99, horizon=10) == pytest.approx(
        -(10 * mu + math.sqrt(10) * sd * z), abs=1e-15
    )


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
