"""Risk measures against empyrical and quantstats (1e-9), hand-worked drawdowns, rolling."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from quantdesk.analytics import returns as rt
from quantdesk.analytics import risk

TOL = 1e-9


@pytest.fixture(scope="module")
def daily() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_t(4, 750) * 0.01 + 0.0004


@pytest.fixture(scope="module")
def bench(daily: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(8)
    return 0.6 * daily + rng.normal(0, 0.008, daily.size)


def series(r: np.ndarray) -> pd.Series:
    return pd.Series(r, index=pd.bdate_range("2022-01-03", periods=r.size))


def test_measures_agree_with_empyrical(daily: np.ndarray, bench: np.ndarray) -> None:
    rf = 0.0001
    assert risk.volatility(daily) == pytest.approx(ep.annual_volatility(daily), abs=TOL)
    assert risk.downside_deviation(daily, 0.0002) == pytest.approx(
        ep.downside_risk(daily, 0.0002), abs=TOL
    )
    assert risk.sharpe(daily, rf) == pytest.approx(ep.sharpe_ratio(daily, rf), abs=TOL)
    assert risk.sortino(daily, 0.0002) == pytest.approx(ep.sortino_ratio(daily, 0.0002), abs=TOL)
    # empyrical reports the drawdown as a negative return; quantdesk as a positive loss.
    assert risk.max_drawdown(daily) == pytest.approx(-ep.max_drawdown(daily), abs=TOL)
    assert risk.calmar(daily) == pytest.approx(ep.calmar_ratio(daily), abs=TOL)
    assert rt.annual_return(daily) == pytest.approx(ep.annual_return(daily), abs=TOL)
    assert risk.beta(daily, bench) == pytest.approx(ep.beta(daily, bench), abs=TOL)
    weekly = daily[:200]
    assert risk.sharpe(weekly, periods_per_year=52) == pytest.approx(
        ep.sharpe_ratio(weekly, period="weekly"), abs=TOL
    )


def test_measures_agree_with_quantstats(daily: np.ndarray) -> None:
    s = series(daily)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert risk.sharpe(daily) == pytest.approx(qs.stats.sharpe(s), abs=TOL)
        assert risk.sortino(daily) == pytest.approx(qs.stats.sortino(s), abs=TOL)
        assert risk.volatility(daily) == pytest.approx(qs.stats.volatility(s), abs=TOL)
        assert risk.max_drawdown(daily) == pytest.approx(-qs.stats.max_drawdown(s), abs=TOL)


def test_columns_and_rolling_agree_with_empyrical(daily: np.ndarray, bench: np.ndarray) -> None:
    both = np.column_stack([daily, bench])
    np.testing.assert_allclose(risk.sharpe(both), ep.sharpe_ratio(both), atol=TOL)
    np.testing.assert_allclose(risk.max_drawdown(both), -ep.max_drawdown(both), atol=TOL)
    np.testing.assert_allclose(
        risk.rolling(risk.sharpe, daily, 63), ep.roll_sharpe_ratio(daily, 63), atol=TOL
    )
    np.testing.assert_allclose(
        risk.rolling(risk.max_drawdown, daily, 63), -ep.roll_max_drawdown(daily, 63), atol=TOL
    )
    np.testing.assert_allclose(
        risk.rolling(risk.beta, daily, 63, bench), ep.roll_beta(daily, bench, 63), atol=TOL
    )
    np.testing.assert_allclose(
        risk.rolling(risk.volatility, daily, 21), ep.roll_annual_volatility(daily, 21), atol=TOL
    )
    assert risk.correlation(daily, bench) == pytest.approx(np.corrcoef(daily, bench)[0, 1])


def test_hand_worked_drawdown_counts_the_starting_value() -> None:
    # 100 -> 90 -> 99 -> 89.1 -> 98.01 -> 107.811: the trough 89.1 is 10.9% under the start.
    r = np.array([-0.10, 0.10, -0.10, 0.10, 0.10])
    assert risk.max_drawdown(r) == pytest.approx(0.109)
    # Under water from day 1 through day 4 (98.01 < 100): four periods.
    assert risk.drawdown_duration(r) == 4.0
    np.testing.assert_allclose(rt.drawdowns(r), [-0.1, -0.01, -0.109, -0.0199, 0.0], atol=1e-12)
    assert risk.max_drawdown(np.array([0.01, 0.02])) == 0.0
    assert np.isnan(risk.calmar(np.array([0.01, 0.02])))
    assert risk.sortino(np.array([0.01, 0.02])) == np.inf


def test_returns_from_prices() -> None:
    prices = np.array([100.0, 110.0, 99.0])
    np.testing.assert_allclose(rt.simple_returns(prices), [0.1, -0.1])
    np.testing.assert_allclose(rt.log_returns(prices), np.log([1.1, 0.9]))
    np.testing.assert_allclose(rt.wealth_index([0.1, -0.1], start=100), [100, 110, 99])
    assert rt.cumulative_return([0.1, -0.1]) == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="finite"):
        rt.as_returns([0.1, np.nan])


def pandas_rolling(
    r: np.ndarray, window: int, measure: Callable[..., float], **kwargs: object
) -> np.ndarray:
    """The reference: pandas' rolling apply of empyrical's own measure, window by window."""
    rolled = pd.Series(r).rolling(window).apply(lambda w: measure(w, **kwargs), raw=True)
    return rolled.to_numpy()[window - 1 :]


def test_rolling_sortino_calmar_downside_and_correlation_agree_with_references(
    daily: np.ndarray, bench: np.ndarray
) -> None:
    r, b, window = daily[:160], bench[:160], 40
    np.testing.assert_allclose(
        risk.rolling(risk.sortino, r, window, required_return=0.0002),
        ep.roll_sortino_ratio(r, window, required_return=0.0002),
        atol=TOL,
    )
    np.testing.assert_allclose(
        risk.rolling(risk.downside_deviation, r, window, required_return=0.0002),
        pandas_rolling(r, window, ep.downside_risk, required_return=0.0002),
        atol=TOL,
    )
    calmar = risk.rolling(risk.calmar, r, window)
    reference = pandas_rolling(r, window, ep.calmar_ratio)
    np.testing.assert_allclose(calmar, reference, atol=TOL)
    assert np.isfinite(calmar).sum() > 100  # most windows have a drawdown to divide by
    np.testing.assert_allclose(
        risk.rolling(risk.correlation, r, window, b),
        pd.Series(r).rolling(window).corr(pd.Series(b)).to_numpy()[window - 1 :],
        atol=TOL,
    )
    # A window that never dips: no downside, an infinite Sortino and no Calmar, as empyrical.
    up = np.full(window, 0.001)
    assert risk.rolling(risk.sortino, up, window)[0] == np.inf
    assert np.isnan(risk.rolling(risk.calmar, up, window)[0])
