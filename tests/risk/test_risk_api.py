"""``/api/v1/risk`` over posted data: the contract's names, values equal to the pure core
and the references, problem responses for impossible requests, the SVG pictures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import empyrical as ep
import httpx
import numpy as np
import pandas as pd
import pytest
from pypfopt import EfficientFrontier, HRPOpt

from quantdesk.analytics import optimize as opt
from tests.conftest import UserFactory
from tests.support.factories import TestUser

BASE = "/api/v1/risk"


def columns(days: int = 300, assets: int = 4, seed: int = 5) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0005, 0.01, (days, 1))
    r = rng.normal(0, 0.01, (days, assets)) + market * rng.uniform(0.5, 1.5, assets)
    r += rng.uniform(0.0, 0.0008, assets)
    return {f"A{i}": r[:, i].tolist() for i in range(assets)}


@pytest.fixture
async def viewer(make_user: UserFactory) -> TestUser:
    return await make_user("viewer")


async def post(client: httpx.AsyncClient, user: TestUser, path: str, body: Any) -> httpx.Response:
    return await client.post(f"{BASE}{path}", json=body, headers=user.headers)


async def test_measures_of_a_series_and_of_weighted_columns(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    data = columns()
    series = np.asarray(data["A0"])
    r = await post(client, viewer, "/measures", {"returns": data["A0"], "confidence": 0.95})
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["var_historical"] == pytest.approx(-ep.value_at_risk(series, 0.05), abs=1e-12)
    assert m["cvar_historical"] == pytest.approx(
        -ep.conditional_value_at_risk(series, 0.05), abs=1e-12
    )
    assert m["sharpe"] == pytest.approx(ep.sharpe_ratio(series), abs=1e-9)
    assert m["sortino"] == pytest.approx(ep.sortino_ratio(series), abs=1e-9)
    assert m["max_drawdown"] == pytest.approx(-ep.max_drawdown(series), abs=1e-12)
    assert m["volatility"] == pytest.approx(ep.annual_volatility(series), abs=1e-12)
    for name in ("var_parametric", "cvar_parametric", "var_cornish_fisher", "var_monte_carlo"):
        assert m[name] > 0
    assert m["cvar_parametric"] > m["var_parametric"]
    weights = {"A0": 0.4, "A1": 0.3, "A2": 0.2, "A3": 0.1}
    r = await post(
        client, viewer, "/measures",
        {"returns": data, "weights": weights, "confidence": 0.99, "horizon_days": 10,
         "rolling_window": 60, "benchmark": data["A3"]},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    m = r.json()
    assert sum(c["component_var"] for c in m["components"]) == pytest.approx(
        m["var_parametric"], rel=1e-9
    )
    assert len(m["rolling"]["sharpe"]) == 300 - 60 + 1
    assert m["beta"] is not None
    r = await post(client, viewer, "/measures", {"returns": data})
    assert r.status_code == 422
    assert "weights" in r.json()["detail"]
    r = await post(client, viewer, "/measures", {"returns": data["A0"], "prices": data["A0"]})
    assert r.status_code == 422


async def test_optimize_contract_matches_pypfopt(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    data = columns()
    frame = pd.DataFrame(data)
    r = await post(
        client, viewer, "/optimize",
        {"returns": data, "objective": "max_sharpe", "risk_free_rate": 0.02,
         "bounds": [0, 0.6], "frontier_points": 5},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) >= {"weights", "expected_return", "volatility", "sharpe"}
    ef = EfficientFrontier(frame.mean() * 252, frame.cov() * 252, weight_bounds=(0, 0.6))
    reference = ef.max_sharpe(risk_free_rate=0.02)
    for name, weight in reference.items():
        assert out["weights"][name] == pytest.approx(weight, abs=1e-4)
    ret, vol, sharpe = ef.portfolio_performance(risk_free_rate=0.02)
    assert (out["expected_return"], out["volatility"], out["sharpe"]) == pytest.approx(
        (ret, vol, sharpe), abs=1e-5
    )
    assert len(out["frontier"]) == 5
    r = await post(client, viewer, "/optimize", {"returns": data, "objective": "hrp"})
    hrp = HRPOpt(frame).optimize()
    for name, weight in hrp.items():
        assert r.json()["weights"][name] == pytest.approx(weight, abs=1e-9)
    r = await post(client, viewer, "/optimize", {"returns": data, "objective": "risk_parity"})
    assert max(r.json()["risk_contributions"].values()) == pytest.approx(0.25, abs=1e-8)


async def test_optimize_from_prices_with_discrete_lots_and_problems(
    client: httpx.AsyncClient, viewer: TestUser
) -> None:
    data = columns(days=200, assets=3)
    prices = {
        name: (100 * np.cumprod(1 + np.asarray(r))).round(2).tolist() for name, r in data.items()
    }
    body = {
        "prices": prices, "objective": "min_volatility", "covariance": "ledoit_wolf",
        "allocation": {"value": "1000000", "lot_sizes": {"A1": 25}},
    }  # fmt: skip
    r = await post(client, viewer, "/optimize", body)
    assert r.status_code == 200, r.text
    out = r.json()
    allocation = out["allocation"]
    assert Decimal(allocation["quantities"]["A1"]) % 25 == 0
    spent = sum(
        Decimal(allocation["latest_prices"][n]) * Decimal(q)
        for n, q in allocation["quantities"].items()
    )
    assert spent + Decimal(allocation["leftover"]) == Decimal(1_000_000)
    frame = pd.DataFrame(prices).pct_change().dropna()
    expected = opt.MeanVariance(
        opt.mean_historical(frame.to_numpy()), opt.ledoit_wolf(frame.to_numpy())[0]
    ).min_volatility()
    assert list(out["weights"].values()) == pytest.approx(expected.weights.tolist(), abs=1e-6)
    problems = [
        {"returns": data, "objective": "efficient_return"},
        {"returns": data, "objective": "efficient_return", "target_return": 5.0},
        {"returns": data, "bounds": [0, 0.2]},
        {"returns": {"A0": [0.01, 0.02], "A1": [0.01]}},
    ]
    for problem in problems:
        r = await post(client, viewer, "/optimize", problem)
        assert r.status_code == 422, (problem, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await post(client, viewer, "/frontier.svg", {"returns": data, "objective": "max_sharpe"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.startswith("<svg")
    assert "A2" in r.text
    assert "max sharpe" in r.text


BOOK = {
    "valuation_date": "2026-12-01",
    "spots": {"NIFTY": "24100", "BANKNIFTY": "50500"},
    "legs": [
        {"underlying": "NIFTY", "kind": "call", "quantity": "-2", "lot_size": "75",
         "strike": "24000", "expiry": "2026-12-31", "iv": 0.14},
        {"underlying": "NIFTY", "kind": "put", "quantity": "-2", "lot_size": "75",
         "strike": "24000", "expiry": "2026-12-31", "iv": 0.15},
        {"underlying": "BANKNIFTY", "kind": "future", "quantity": "1", "lot_size": "30",
         "expiry": "2026-12-31"},
    ],
    "grid": {"days": [0, 7]},
    "monte_carlo": {"volatilities": {"BANKNIFTY": 0.16}, "correlation": [[1, 0.7], [0.7, 1]],
                    "simulations": 2000},
}  # fmt: skip


async def test_scenarios_of_a_posted_book(client: httpx.AsyncClient, viewer: TestUser) -> None:
    r = await post(client, viewer, "/scenarios", BOOK)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["underlyings"] == ["BANKNIFTY", "NIFTY"]
    assert len(out["pnl"]) == 2
    assert len(out["pnl"][0]) == 41
    assert len(out["pnl"][0][0]) == 21
    assert out["pnl"][0][20][10] == "0.00"
    # A short straddle loses most on a large move with IV up, after time has not helped.
    worst = out["worst"]
    assert Decimal(worst["pnl"]) == min(Decimal(v) for p in out["pnl"] for row in p for v in row)
    assert worst["iv_change"] == pytest.approx(0.5)
    assert abs(worst["underlying_move"]) == pytest.approx(0.2)
    mc = out["monte_carlo"]
    assert Decimal(mc["cvar"]) >= Decimal(mc["var"]) > 0
    assert mc["volatilities"] == {"BANKNIFTY": 0.16, "NIFTY": pytest.approx(0.145)}
    r = await post(client, viewer, "/scenarios.svg", BOOK)
    assert r.status_code == 200
    assert r.text.startswith("<svg")
    assert r.text.count("<rect") > 2 * 41 * 21
    expired = {**BOOK, "valuation_date": "2027-01-05"}
    r = await post(client, viewer, "/scenarios", expired)
    assert r.status_code == 422
    assert "legs[0]" in r.json()["detail"]


async def test_risk_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    r = await client.post(f"{BASE}/measures", json={"returns": [0.01, 0.02]})
    assert r.status_code == 401
