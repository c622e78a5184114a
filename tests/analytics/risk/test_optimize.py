"""Optimisers against PyPortfolioOpt (mean-variance, HRP, estimators, discrete allocation),
riskfolio-lib and skfolio (risk parity) to 1e-4 in weights; invariants by hypothesis."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import riskfolio as rf
from hypothesis import given, settings
from hypothesis import strategies as st
from pypfopt import EfficientFrontier, HRPOpt, objective_functions
from pypfopt import expected_returns as pexp
from pypfopt import risk_models as prisk
from pypfopt.discrete_allocation import DiscreteAllocation
from skfolio import RiskMeasure
from skfolio.optimization import RiskBudgeting
from sklearn.covariance import ledoit_wolf as sk_ledoit_wolf

from quantdesk.analytics import optimize as opt

W_TOL = 1e-4


def make_returns(days: int, assets: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0004, 0.01, (days, 1))
    return (
        rng.normal(0, 0.012, (days, assets))
        + market * rng.uniform(0.3, 1.5, assets)
        + rng.uniform(-0.0002, 0.0008, assets)
    )


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, pd.DataFrame]:
    r = make_returns(500, 8, 1)
    return r, pd.DataFrame(r, columns=[f"A{i}" for i in range(r.shape[1])])


def test_estimators_match_pypfopt(data: tuple[np.ndarray, pd.DataFrame]) -> None:
    r, df = data
    kw = {"returns_data": True}
    np.testing.assert_allclose(
        opt.mean_historical(r),
        pexp.mean_historical_return(df, compounding=False, **kw),
        atol=1e-12,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        opt.mean_historical(r, compounding=True),
        pexp.mean_historical_return(df, **kw),
        atol=1e-12,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        opt.ema_historical(r, span=100),
        pexp.ema_historical_return(df, span=100, compounding=False, **kw),
        atol=1e-12,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        opt.capm(r, risk_free_rate=0.03),
        pexp.capm_return(df, risk_free_rate=0.03, compounding=False, **kw),
        atol=1e-12,
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        opt.sample_cov(r), prisk.sample_cov(df, **kw), atol=1e-12, rtol=1e-10
    )
    np.testing.assert_allclose(
        opt.exp_cov(r, span=60), prisk.exp_cov(df, span=60, **kw), atol=1e-12, rtol=1e-10
    )
    shrunk, delta = opt.ledoit_wolf(r)
    sk_cov, sk_delta = sk_ledoit_wolf(r)
    assert delta == pytest.approx(sk_delta, abs=1e-12)
    np.testing.assert_allclose(shrunk, sk_cov * 252, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(
        shrunk, prisk.CovarianceShrinkage(df, **kw).ledoit_wolf(), atol=1e-12, rtol=1e-10
    )


def pypfopt_frontier(
    df: pd.DataFrame,
    bounds: tuple[float, float] | list[tuple[float, float]] = (0, 1),
    gamma: float = 0.0,
) -> EfficientFrontier:
    mu = pexp.mean_historical_return(df, returns_data=True, compounding=False)
    cov = prisk.sample_cov(df, returns_data=True)
    ef = EfficientFrontier(mu, cov, weight_bounds=bounds, solver="CLARABEL")
    if gamma:
        ef.add_objective(objective_functions.L2_reg, gamma=gamma)
    return ef


def ours(r: np.ndarray, **kwargs: object) -> opt.MeanVariance:
    return opt.MeanVariance(opt.mean_historical(r), opt.sample_cov(r), **kwargs)  # type: ignore[arg-type]


def weights(ordered: dict[str, float]) -> np.ndarray:
    return np.array(list(ordered.values()))


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.0, 0.3), (-0.5, 1.0)])
def test_mean_variance_matches_pypfopt(
    data: tuple[np.ndarray, pd.DataFrame], bounds: tuple[float, float]
) -> None:
    r, df = data
    mv = ours(r, bounds=bounds)
    np.testing.assert_allclose(
        mv.min_volatility().weights, weights(pypfopt_frontier(df, bounds).min_volatility()),
        atol=W_TOL,
    )  # fmt: skip
    p = mv.max_sharpe(risk_free_rate=0.02)
    np.testing.assert_allclose(
        p.weights, weights(pypfopt_frontier(df, bounds).max_sharpe(risk_free_rate=0.02)), atol=W_TOL
    )
    ef = pypfopt_frontier(df, bounds)
    ef.max_sharpe(risk_free_rate=0.02)
    ret, vol, sharpe = ef.portfolio_performance(risk_free_rate=0.02)
    assert (p.expected_return, p.volatility, p.sharpe) == pytest.approx(
        (ret, vol, sharpe), abs=1e-6
    )
    target_ret = float(
        0.5 * (mv.min_volatility().expected_return + mv.max_return().expected_return)
    )
    np.testing.assert_allclose(
        mv.efficient_return(target_ret).weights,
        weights(pypfopt_frontier(df, bounds).efficient_return(target_ret)),
        atol=W_TOL,
    )
    target_vol = 1.2 * mv.min_volatility().volatility
    np.testing.assert_allclose(
        mv.efficient_risk(target_vol).weights,
        weights(pypfopt_frontier(df, bounds).efficient_risk(target_vol)),
        atol=W_TOL,
    )
    assert mv.efficient_risk(target_vol).volatility <= target_vol + 1e-7


def test_l2_sector_limits_and_frontier_match_pypfopt(
    data: tuple[np.ndarray, pd.DataFrame],
) -> None:
    r, df = data
    assets = list(df.columns)
    sectors = {
        a: ("tech" if i < 3 else "energy" if i < 6 else "banks") for i, a in enumerate(assets)
    }
    lower, upper = {"banks": 0.2}, {"tech": 0.25, "energy": 0.4}
    mv = ours(r, groups=opt.group_limits(sectors, assets, lower, upper), l2_gamma=0.1)
    ef = pypfopt_frontier(df, gamma=0.1)
    ef.add_sector_constraints(sectors, lower, upper)
    w = mv.min_volatility().weights
    np.testing.assert_allclose(w, weights(ef.min_volatility()), atol=W_TOL)
    assert w[:3].sum() <= 0.25 + 1e-8
    assert w[6:].sum() >= 0.2 - 1e-8
    frontier = ours(r).efficient_frontier(6)
    assert len(frontier) == 6
    vols = [p.volatility for p in frontier]
    assert vols == sorted(vols)
    for point in frontier[1:-1]:
        reference = pypfopt_frontier(df).efficient_return(point.expected_return)
        np.testing.assert_allclose(point.weights, weights(reference), atol=W_TOL)


def test_hrp_matches_pypfopt(data: tuple[np.ndarray, pd.DataFrame]) -> None:
    r, df = data
    for linkage in ("single", "ward"):
        result = opt.hrp(r, linkage)
        reference = HRPOpt(df).optimize(linkage_method=linkage)
        np.testing.assert_allclose(result.weights, [reference[a] for a in df.columns], atol=1e-12)
    assert sorted(result.order.tolist()) == list(range(r.shape[1]))


def test_risk_parity_matches_riskfolio_and_skfolio(data: tuple[np.ndarray, pd.DataFrame]) -> None:
    r, df = data
    w = opt.risk_parity(np.cov(r, rowvar=False))
    contributions = opt.risk_contributions(w, np.cov(r, rowvar=False))
    np.testing.assert_allclose(contributions, 1 / r.shape[1], atol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        port = rf.Portfolio(returns=df)
        port.assets_stats(method_mu="hist", method_cov="hist")
        reference = port.rp_optimization(model="Classic", rm="MV", rf=0, b=None, hist=True)
        sk = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE).fit(r).weights_
    np.testing.assert_allclose(w, reference.to_numpy().ravel(), atol=W_TOL)
    np.testing.assert_allclose(w, sk, atol=W_TOL)
    budget = np.array([2, 1, 1, 1, 1, 1, 1, 1], dtype=float)
    skewed = opt.risk_parity(np.cov(r, rowvar=False), budget)
    np.testing.assert_allclose(
        opt.risk_contributions(skewed, np.cov(r, rowvar=False)), budget / budget.sum(), atol=1e-10
    )


def test_discrete_allocation_matches_pypfopt_greedy_and_respects_lots() -> None:
    rng = np.random.default_rng(4)
    names = [f"S{i}" for i in range(10)]
    for _ in range(5):
        w = rng.dirichlet(np.ones(10))
        prices = np.round(rng.uniform(20, 900, 10), 2)
        ref, left = DiscreteAllocation(
            dict(zip(names, w, strict=True)), pd.Series(prices, index=names), 50_000
        ).greedy_portfolio()
        got = opt.discrete_allocation(
            dict(zip(names, w, strict=True)),
            {n: Decimal(str(p)) for n, p in zip(names, prices, strict=True)},
            Decimal(50_000),
        )
        assert got.quantities == dict(ref)
        assert float(got.leftover) == pytest.approx(left, abs=1e-6)
    lots = opt.discrete_allocation(
        {"NIFTY-FUT": 0.5, "RELIANCE": 0.5},
        {"NIFTY-FUT": Decimal("24000"), "RELIANCE": Decimal("2900.5")},
        Decimal("5000000"),
        lot_sizes={"NIFTY-FUT": 75},
    )
    assert lots.lots["NIFTY-FUT"] == 1
    assert lots.quantities["NIFTY-FUT"] == 75
    spent = 75 * Decimal(24000) + lots.quantities["RELIANCE"] * Decimal("2900.5")
    assert lots.leftover == Decimal(5_000_000) - spent >= 0


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10_000),
    st.floats(0.25, 0.6),
    st.sampled_from(["min_volatility", "max_sharpe", "efficient_risk"]),
)
def test_weights_sum_to_one_within_bounds(seed: int, cap: float, objective: str) -> None:
    r = make_returns(120, 5, seed)
    mv = ours(r, bounds=(0.0, cap))
    if objective == "max_sharpe":
        if mv.max_return().expected_return <= 0:
            return
        w = mv.max_sharpe().weights
    elif objective == "efficient_risk":
        w = mv.efficient_risk(1.5 * mv.min_volatility().volatility).weights
    else:
        w = mv.min_volatility().weights
    assert w.sum() == pytest.approx(1.0, abs=1e-8)
    assert w.min() >= -1e-8
    assert w.max() <= cap + 1e-8
    parity = opt.risk_parity(np.cov(r, rowvar=False))
    assert parity.sum() == pytest.approx(1.0)
    assert parity.min() > 0
    assert opt.hrp(r).weights.sum() == pytest.approx(1.0)


def test_impossible_problems_are_errors(data: tuple[np.ndarray, pd.DataFrame]) -> None:
    r, _ = data
    with pytest.raises(opt.OptimizationError, match="sum to 1"):
        ours(r, bounds=(0.0, 0.1))
    with pytest.raises(opt.OptimizationError, match="lowest attainable"):
        ours(r).efficient_risk(0.0001)
    with pytest.raises(opt.OptimizationError, match="no solution"):
        ours(r).efficient_return(10.0)
    with pytest.raises(opt.OptimizationError, match="risk-free"):
        ours(r).max_sharpe(risk_free_rate=5.0)


PER_ASSET = [(0.0, 0.3), (0.05, 0.4), (0.0, 0.2), (0.1, 0.5), (0.0, 1.0), (0.0, 0.25),
             (0.02, 0.3), (0.0, 0.15)]  # fmt: skip


def test_per_asset_bounds_match_pypfopt_weight_bounds(
    data: tuple[np.ndarray, pd.DataFrame],
) -> None:
    r, df = data
    mv = ours(r, bounds=PER_ASSET)
    solved: dict[str, tuple[opt.Portfolio, Callable[[EfficientFrontier], dict[str, float]]]] = {
        "min_volatility": (mv.min_volatility(), lambda ef: ef.min_volatility()),
        "max_sharpe": (mv.max_sharpe(0.02), lambda ef: ef.max_sharpe(risk_free_rate=0.02)),
        "efficient_risk": (mv.efficient_risk(0.16), lambda ef: ef.efficient_risk(0.16)),
    }
    for name, (p, reference) in solved.items():
        expected = weights(reference(pypfopt_frontier(df, PER_ASSET)))
        np.testing.assert_allclose(p.weights, expected, atol=W_TOL, err_msg=name)
        lo, hi = np.array(PER_ASSET).T
        assert np.all(p.weights >= lo - 1e-8)
        assert np.all(p.weights <= hi + 1e-8)
    # The bounds bind: without them max Sharpe holds more than 30% of something.
    assert ours(r).max_sharpe(0.02).weights.max() > 0.3


def sector_problem(
    df: pd.DataFrame,
) -> tuple[dict[str, str], dict[str, float], dict[str, float]]:
    assets = list(df.columns)
    sectors = {
        a: ("tech" if i < 3 else "energy" if i < 6 else "banks") for i, a in enumerate(assets)
    }
    # Binding here: unconstrained, max Sharpe holds 56% banks and 19% tech.
    return sectors, {"tech": 0.25}, {"banks": 0.5, "energy": 0.45}


@pytest.mark.parametrize("objective", ["max_sharpe", "efficient_risk"])
def test_sector_limits_and_l2_under_max_sharpe_and_efficient_risk_match_pypfopt(
    data: tuple[np.ndarray, pd.DataFrame], objective: str
) -> None:
    r, df = data
    sectors, lower, upper = sector_problem(df)
    groups = opt.group_limits(sectors, list(df.columns), lower, upper)
    held = []
    for gamma in (0.0, 0.5):
        mv = ours(r, groups=groups, l2_gamma=gamma)
        ef = pypfopt_frontier(df, gamma=gamma)
        ef.add_sector_constraints(sectors, lower, upper)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyPortfolioOpt's note on L2 under max_sharpe
            if objective == "max_sharpe":
                got, expected = mv.max_sharpe(0.02).weights, weights(ef.max_sharpe(0.02))
            else:
                got, expected = mv.efficient_risk(0.17).weights, weights(ef.efficient_risk(0.17))
        np.testing.assert_allclose(got, expected, atol=W_TOL, err_msg=f"gamma={gamma}")
        assert got[:3].sum() >= 0.25 - 1e-8
        assert got[3:6].sum() <= 0.45 + 1e-8
        assert got[6:].sum() <= 0.5 + 1e-8
        held.append(int((got > 1e-4).sum()))
    # L2 spreads the weights out: more assets held than without it.
    assert held[1] > held[0]


def test_discrete_allocation_of_shorts_matches_pypfopt_greedy() -> None:
    # 130/30 by hand: longs 0.7 + 0.6 over 30,000; shorts 0.2 + 0.1 over 30% of it, 9,000:
    # S1 2/3 of 9,000 at 50 = 120 shares, S2 1/3 at 25 = 120 (float 2/3 must not floor to 119).
    w = {"L1": 0.7, "L2": 0.6, "S1": -0.2, "S2": -0.1}
    prices = {"L1": Decimal(100), "L2": Decimal("37.5"), "S1": Decimal(50), "S2": Decimal(25)}
    series = pd.Series({n: float(p) for n, p in prices.items()})
    for ratio in (None, 0.3, 0.5):
        ref, left = DiscreteAllocation(w, series, 30_000, short_ratio=ratio).greedy_portfolio()
        got = opt.discrete_allocation(w, prices, Decimal(30_000), short_ratio=ratio)
        assert got.quantities == ref, ratio
        assert float(got.leftover) == pytest.approx(left, abs=1e-6)
    assert opt.discrete_allocation(w, prices, Decimal(30_000), short_ratio=0.3).quantities == {
        "L1": 161, "L2": 369, "S1": -120, "S2": -120,
    }  # fmt: skip
    rng = np.random.default_rng(6)
    names = [f"S{i}" for i in range(8)]
    for ratio in (None, 0.3, 0.25, 0.6):
        raw = rng.normal(size=8)
        raw[:5], raw[5:] = np.abs(raw[:5]), -np.abs(raw[5:])
        target = dict(zip(names, (raw / raw[:5].sum()).tolist(), strict=True))
        price = np.round(rng.uniform(20, 900, 8), 2)
        ref, left = DiscreteAllocation(
            target, pd.Series(price, index=names), 50_000, short_ratio=ratio
        ).greedy_portfolio()
        got = opt.discrete_allocation(
            target, {n: Decimal(str(p)) for n, p in zip(names, price, strict=True)},
            Decimal(50_000), short_ratio=ratio,
        )  # fmt: skip
        assert got.quantities == ref, ratio
        assert all(got.quantities[n] < 0 for n in names[5:] if n in got.quantities)
        assert float(got.leftover) == pytest.approx(left, abs=1e-6)
