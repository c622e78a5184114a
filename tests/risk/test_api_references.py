"""``/api/v1/risk`` values against the reference libraries: every VaR figure and rule of
``/measures``, the annual risk-free conversion, rolling measures, and each ``/optimize``
parameter (targets, estimators, bounds, sectors, L2, HRP linkage, shorts in the allocation)
against PyPortfolioOpt; and the worked example of docs/risk.md, read from the doc itself."""

from __future__ import annotations

import json
import re
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import empyrical as ep
import httpx
import numpy as np
import pandas as pd
import pytest
import quantstats as qs
import riskfolio as rf
from pypfopt import EfficientFrontier, HRPOpt, objective_functions
from pypfopt import expected_returns as pexp
from pypfopt import risk_models as prisk
from pypfopt.discrete_allocation import DiscreteAllocation

from tests.analytics.risk.test_var import modified_var
from tests.conftest import UserFactory
from tests.risk.test_risk_api import columns, post
from tests.support.factories import TestUser

DOC = Path(__file__).resolve().parents[2] / "docs" / "risk.md"
W_TOL = 1e-4


@pytest.fixture
async def viewer(make_user: UserFactory) -> TestUser:
    return await make_user("viewer")


def dated(r: np.ndarray) -> pd.Series:
    return pd.Series(r, index=pd.bdate_range("2024-01-01", periods=r.size))


async def answer(client: httpx.AsyncClient, user: TestUser, path: str, body: Any) -> dict[str, Any]:
    r = await post(client, user, path, body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def measures(client: httpx.AsyncClient, user: TestUser, **body: Any) -> dict[str, Any]:
    return await answer(client, user, "/measures", {"monte_carlo": None, **body})


async def test_measures_var_figures_and_rules_match_their_references(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    series = np.asarray(columns(days=250, assets=1, seed=9)["A0"])
    s = dated(series)
    m = await measures(client, viewer, returns=series.tolist(), confidence=0.99)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m["var_parametric"] == pytest.approx(
            -qs.stats.value_at_risk(s, confidence=0.99), abs=1e-12
        )
        assert m["cvar_parametric"] == pytest.approx(-qs.stats.cvar(s, confidence=0.99), abs=1e-12)
    assert m["var_cornish_fisher"] == pytest.approx(modified_var(series, 0.99), abs=1e-15)

    # The other quantile rules: riskfolio-lib's order statistic and coherent CVaR, quantstats'
    # tail mean; and the square-root-of-time rule for the historical figures.
    lower = await measures(
        client, viewer, returns=series.tolist(), confidence=0.95, horizon_days=4,
        historical_rule="lower", cvar_rule="rockafellar_uryasev",
    )  # fmt: skip
    assert lower["var_historical"] == pytest.approx(
        2 * rf.RiskFunctions.VaR_Hist(series, 0.05), abs=1e-12
    )
    assert lower["cvar_historical"] == pytest.approx(
        2 * rf.RiskFunctions.CVaR_Hist(series, 0.05), abs=1e-12
    )
    assert lower["var_cornish_fisher"] == pytest.approx(modified_var(series, 0.95, 4), abs=1e-15)
    tail = await measures(
        client, viewer, returns=series.tolist(), confidence=0.95, cvar_rule="tail_mean"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert tail["cvar_historical"] == pytest.approx(
            -qs.stats.cvar(s, confidence=0.95, method="historical"), abs=1e-12
        )
    assert tail["var_historical"] == pytest.approx(-ep.value_at_risk(series, 0.05), abs=1e-12)
    # The rules differ on this sample, so each assertion above tells them apart.
    assert abs(lower["var_historical"] / 2 - tail["var_historical"]) > 1e-5


async def test_the_annual_risk_free_rate_is_divided_by_the_periods_per_year(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    series = np.asarray(columns(days=250, assets=1, seed=10)["A0"])
    m = await measures(client, viewer, returns=series.tolist(), risk_free_rate=0.063)
    daily = 0.063 / 252
    assert m["sharpe"] == pytest.approx(ep.sharpe_ratio(series, daily), abs=1e-9)
    assert m["sortino"] == pytest.approx(ep.sortino_ratio(series, daily), abs=1e-9)
    assert m["downside_deviation"] == pytest.approx(ep.downside_risk(series, daily), abs=1e-12)
    assert m["sharpe"] < ep.sharpe_ratio(series) - 0.2  # the rate matters at this size
    weekly = await measures(
        client, viewer, returns=series[:104].tolist(), risk_free_rate=0.052, periods_per_year=52
    )
    assert weekly["sharpe"] == pytest.approx(
        ep.sharpe_ratio(series[:104], 0.001, period="weekly"), abs=1e-9
    )
    assert weekly["volatility"] == pytest.approx(
        ep.annual_volatility(series[:104], period="weekly"), abs=1e-12
    )


async def test_rolling_measures_with_a_benchmark(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    data = columns(days=120, assets=2, seed=11)
    r, b, window = np.asarray(data["A0"]), np.asarray(data["A1"]), 30
    m = await measures(
        client, viewer, returns=data["A0"], benchmark=data["A1"], rolling_window=window,
        risk_free_rate=0.0252,
    )  # fmt: skip
    rolling = m["rolling"]
    rf_daily = 0.0252 / 252

    def pandas(measure: Any, **kwargs: Any) -> np.ndarray:
        out = pd.Series(r).rolling(window).apply(lambda w: measure(w, **kwargs), raw=True)
        return out.to_numpy()[window - 1 :]

    def values(name: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in rolling[name]], dtype=float)

    expected = {
        "volatility": ep.roll_annual_volatility(r, window),
        "sharpe": ep.roll_sharpe_ratio(r, window, risk_free=rf_daily),
        "sortino": ep.roll_sortino_ratio(r, window, required_return=rf_daily),
        "downside_deviation": pandas(ep.downside_risk, required_return=rf_daily),
        "calmar": pandas(ep.calmar_ratio),
        "max_drawdown": -ep.roll_max_drawdown(r, window),
        "beta": ep.roll_beta(r, b, window),
        "correlation": pd.Series(r).rolling(window).corr(pd.Series(b)).to_numpy()[window - 1 :],
    }
    for name, reference in expected.items():
        assert len(rolling[name]) == r.size - window + 1, name
        np.testing.assert_allclose(values(name), reference, atol=1e-9, err_msg=name)
    without = await measures(client, viewer, returns=data["A0"], rolling_window=window)
    assert without["rolling"]["beta"] is None
    assert without["rolling"]["correlation"] is None


def frontier(mu: pd.Series, cov: pd.DataFrame, **kwargs: Any) -> EfficientFrontier:
    # Clarabel, as quantdesk: PyPortfolioOpt's default for these problems is OSQP, whose
    # default tolerances leave weights 1e-4 from the optimum.
    return EfficientFrontier(mu, cov, solver="CLARABEL", **kwargs)


def frame_of(data: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(data)


def assert_weights(out: dict[str, Any], reference: dict[str, float], tol: float = W_TOL) -> None:
    assert set(out["weights"]) == set(reference)
    for name, weight in reference.items():
        assert out["weights"][name] == pytest.approx(weight, abs=tol), name


async def optimize(client: httpx.AsyncClient, user: TestUser, **body: Any) -> dict[str, Any]:
    return await answer(client, user, "/optimize", body)


async def test_optimize_targets_and_estimators_match_pypfopt(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    data = columns(days=250, assets=4, seed=12)
    frame = frame_of(data)
    mu, cov = frame.mean() * 252, frame.cov() * 252
    low = frontier(mu, cov).min_volatility()
    low_return = float(np.dot(list(low.values()), mu))
    target = 0.5 * (low_return + float(mu.max()))
    out = await optimize(
        client, viewer, returns=data, objective="efficient_return", target_return=target
    )
    assert_weights(out, frontier(mu, cov).efficient_return(target))
    assert out["expected_return"] == pytest.approx(target, abs=1e-6)

    ema = pexp.ema_historical_return(frame, returns_data=True, span=60, compounding=False)
    ef = frontier(ema, prisk.exp_cov(frame, returns_data=True, span=60))
    out = await optimize(
        client, viewer, returns=data, objective="max_sharpe", expected_returns="ema_historical",
        covariance="exp_cov", span=60, risk_free_rate=0.01,
    )  # fmt: skip
    assert_weights(out, ef.max_sharpe(risk_free_rate=0.01))
    assert out["sharpe"] == pytest.approx(ef.portfolio_performance(risk_free_rate=0.01)[2], 1e-5)

    capm = pexp.capm_return(frame, returns_data=True, risk_free_rate=0.03, compounding=False)
    exp = prisk.exp_cov(frame, returns_data=True)  # span 180, the default of both
    floor = frontier(capm, exp).min_volatility()
    w = np.array([floor[n] for n in frame.columns])
    vol = 1.1 * float(np.sqrt(w @ exp.to_numpy() @ w))
    ef = frontier(capm, exp)
    out = await optimize(
        client, viewer, returns=data, objective="efficient_risk", target_volatility=vol,
        expected_returns="capm", covariance="exp_cov", risk_free_rate=0.03,
    )  # fmt: skip
    assert_weights(out, ef.efficient_risk(vol))
    assert out["volatility"] == pytest.approx(vol, abs=1e-6)
    assert {n: p["expected_return"] for n, p in out["assets"].items()} == pytest.approx(
        capm.to_dict(), abs=1e-12
    )

    # Five assets whose trees differ by linkage (with four, every linkage gave one tree).
    data = columns(days=250, assets=5, seed=15)
    frame = frame_of(data)
    single = await optimize(client, viewer, returns=data, objective="hrp")
    assert_weights(single, HRPOpt(frame).optimize(linkage_method="single"), tol=1e-9)
    for linkage in ("complete", "average", "ward"):
        out = await optimize(client, viewer, returns=data, objective="hrp", linkage=linkage)
        assert_weights(out, HRPOpt(frame).optimize(linkage_method=linkage), tol=1e-9)
        assert max(abs(out["weights"][n] - w) for n, w in single["weights"].items()) > 0.02


async def test_optimize_bounds_sectors_and_l2_match_pypfopt(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    data = columns(days=250, assets=5, seed=13)
    frame = frame_of(data)
    mu, cov = frame.mean() * 252, frame.cov() * 252
    names = list(frame.columns)
    # The dict form: the assets it does not name keep (0, 1).
    bounds = {"A0": (0.05, 0.3), "A2": (0.1, 0.25), "A4": (0.0, 0.2)}
    out = await optimize(client, viewer, returns=data, objective="max_sharpe", bounds=bounds)
    per_asset = [bounds.get(n, (0.0, 1.0)) for n in names]
    ef = frontier(mu, cov, weight_bounds=per_asset)
    assert_weights(out, ef.max_sharpe(risk_free_rate=0.0))
    for name, (lo, hi) in bounds.items():
        assert lo - 1e-8 <= out["weights"][name] <= hi + 1e-8

    sectors = {"A0": "it", "A1": "it", "A2": "banks", "A3": "banks", "A4": "energy"}
    lower, upper = {"energy": 0.15}, {"it": 0.35}
    for objective, extra in (("max_sharpe", {}), ("efficient_risk", {"target_volatility": 0.2})):
        out = await optimize(
            client, viewer, returns=data, objective=objective, sectors=sectors,
            sector_lower=lower, sector_upper=upper, l2_gamma=0.3, risk_free_rate=0.02, **extra,
        )  # fmt: skip
        ef = frontier(mu, cov)
        ef.add_sector_constraints(sectors, lower, upper)
        ef.add_objective(objective_functions.L2_reg, gamma=0.3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyPortfolioOpt's note on L2 under max_sharpe
            reference = (
                ef.max_sharpe(risk_free_rate=0.02)
                if objective == "max_sharpe"
                else ef.efficient_risk(0.2)
            )
        assert_weights(out, reference)
        assert out["weights"]["A0"] + out["weights"]["A1"] <= 0.35 + 1e-8
        assert out["weights"]["A4"] >= 0.15 - 1e-8


async def test_allocation_of_a_long_short_portfolio_matches_pypfopt(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    data = columns(days=250, assets=4, seed=14)
    latest = {"A0": "1890.5", "A1": "412.25", "A2": "88.1", "A3": "2750"}
    body = {
        "returns": data, "objective": "min_volatility", "bounds": [-0.3, 1.0],
        "allocation": {"value": "500000", "latest_prices": latest, "short_ratio": 0.3},
    }  # fmt: skip
    out = await optimize(client, viewer, **body)
    weights = out["weights"]
    assert min(weights.values()) < -0.01  # the minimum-variance hedge shorts something
    prices = pd.Series({n: float(p) for n, p in latest.items()})
    held = {n: w for n, w in weights.items() if w != 0.0}
    for ratio in (0.3, None):
        if ratio is None:
            body["allocation"] = {"value": "500000", "latest_prices": latest}
            out = await optimize(client, viewer, **body)
        ref, left = DiscreteAllocation(
            held, prices[list(held)], 500_000, short_ratio=ratio
        ).greedy_portfolio()
        allocation = out["allocation"]
        assert {n: int(q) for n, q in allocation["quantities"].items()} == ref, ratio
        assert float(allocation["leftover"]) == pytest.approx(left, abs=1e-6)
        short_value = sum(
            -Decimal(q) * Decimal(latest[n])
            for n, q in allocation["quantities"].items()
            if Decimal(q) < 0
        )
        budget = Decimal(500_000) * Decimal(str(ratio or -sum(w for w in held.values() if w < 0)))
        assert 0 < short_value <= budget


def worked_example() -> tuple[list[float], float, str]:
    """The returns, the confidence and the text of docs/risk.md's worked example."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Worked example") :]
    section = section[: section.index("\n## ", 1)]
    request = re.search(r"^(\{\"returns\".*\})$", section, re.MULTILINE)
    assert request is not None, "the worked example's request is missing from docs/risk.md"
    body = json.loads(request.group(1))
    return body["returns"], body["confidence"], section


def assert_printed(actual: float, section: str, pattern: str, scale: float = 1.0) -> None:
    """``actual`` (times ``scale``: 100 for a percentage) rounds to the figure the doc prints
    where ``pattern`` matches: within half a unit of its last digit."""
    found = re.search(pattern, section, re.DOTALL)
    assert found is not None, f"docs/risk.md's worked example lost {pattern!r}"
    printed = found.group(1)
    digits = len(printed.partition(".")[2])
    assert abs(actual * scale - float(printed)) <= 0.5 * 10.0**-digits + 1e-12, (pattern, actual)


async def test_the_worked_example_of_the_docs(client: httpx.AsyncClient, viewer: TestUser) -> None:
    returns, confidence, section = worked_example()
    r = np.asarray(returns)
    m = await measures(client, viewer, returns=returns, confidence=confidence)
    # The figures, worked out independently: empyrical, the written-out Cornish-Fisher formula.
    assert m["var_historical"] == pytest.approx(-ep.value_at_risk(r, 0.1), abs=1e-15)
    assert m["var_historical"] == pytest.approx(0.021, abs=1e-15)
    assert m["var_parametric"] == pytest.approx(0.0206385171105, abs=1e-12)
    assert m["var_cornish_fisher"] == pytest.approx(modified_var(r, 0.9), abs=1e-15)
    assert m["var_cornish_fisher"] == pytest.approx(0.0230891703549, abs=1e-12)
    assert m["max_drawdown"] == pytest.approx(-ep.max_drawdown(r), abs=1e-15)
    assert m["max_drawdown"] == pytest.approx(1 - 0.9764225 / 1.01, abs=1e-7)
    assert m["drawdown_duration"] == 9
    # ... and as the doc prints them, so the doc fails this test when its numbers drift.
    number = r"(\d+(?:\.\d+)?)"
    assert_printed(m["var_historical"], section, rf"\*\*VaR {number}%\*\*", 100)
    assert_printed(m["var_historical"], section, rf"value_at_risk\(r, 0.1\) = −{number}", 1)
    lower = await measures(
        client, viewer, returns=returns, confidence=confidence, historical_rule="lower",
        cvar_rule="rockafellar_uryasev",
    )  # fmt: skip
    assert_printed(lower["var_historical"], section, rf"lower:.*?→ \*\*{number}%\*\*", 100)
    assert_printed(m["cvar_historical"], section, rf"CVaR, empyrical:.*?→ \*\*{number}%", 100)
    assert_printed(lower["cvar_historical"], section, rf"Rockafellar-Uryasev:.*?\*\*{number}%", 100)
    assert_printed(m["var_parametric"], section, rf"Parametric:.*?\*\*{number}%\*\*", 100)
    assert_printed(m["cvar_parametric"], section, rf"CVaR `[^`]*` \*\*{number}%\*\*", 100)
    assert_printed(m["var_cornish_fisher"], section, rf"Cornish-Fisher.*?\*\*{number}%\*\*", 100)
    assert_printed(m["max_drawdown"], section, rf"\*\*{number}% max drawdown\*\*", 100)
    assert_printed(m["drawdown_duration"], section, rf"\*\*drawdown duration {number}\*\*")
    assert_printed(m["volatility"], section, rf"Volatility `[^`]*= {number}%`", 100)
    assert_printed(m["sharpe"], section, rf"Sharpe `[^`]*= {number}`")
    # The API line: "0.020638..." is the answer's leading digits, "0.021" the whole answer.
    answer = re.search(r"^→ (\{.*\})$", section, re.MULTILINE)
    assert answer is not None
    shown = re.findall(r'"(\w+)": (\d+(?:\.\d+)?)(\.\.\.)?', answer.group(1))
    assert {name for name, _, _ in shown} >= {"var_historical", "var_parametric", "max_drawdown"}
    for name, printed, cut in shown:
        if cut:
            step = 10.0 ** -len(printed.partition(".")[2])
            assert float(printed) <= m[name] < float(printed) + step, name
        else:
            assert m[name] == pytest.approx(float(printed), abs=1e-15), name
