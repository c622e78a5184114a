"""Risk and optimisation of a portfolio (issue 14's holdings and daily TWR series)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.analytics import optimize as opt
from quantdesk.analytics import risk
from quantdesk.analytics.options import price
from quantdesk.derivatives.market_inputs import years_to_expiry
from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Exchange, Quote, Timeframe
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.platform.db import utcnow
from tests.conftest import UserFactory
from tests.risk.test_sources_api import EXPIRY, OPTION, list_options

DAYS = 90


def weekdays(end: dt.date, count: int) -> list[dt.date]:
    out: list[dt.date] = []
    day = end
    while len(out) < count:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    return out[::-1]


@pytest.mark.usefixtures("sim_market")
async def test_portfolio_risk_and_rebalance(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    days = weekdays(dt.datetime.now(dt.UTC).date(), DAYS)
    rng = np.random.default_rng(8)
    closes = {
        "SIM:ALPHA": np.round(100 * np.exp(np.cumsum(rng.normal(0.001, 0.012, DAYS))), 2),
        "SIM:BETA": np.round(250 * np.exp(np.cumsum(rng.normal(0.0, 0.02, DAYS))), 2),
    }
    ts = np.array(
        [int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in days], dtype=np.int64
    )
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as db:
        for key, close in closes.items():
            bars = BarArrays(ts, close, close * 1.01, close * 0.99, close, np.full(DAYS, 1e5))
            await BarStore(db).bulk_load(key, Timeframe.D1, bars)
    user = await make_user("trader")
    r = await client.post(
        "/api/v1/portfolios", json={"name": "risk", "currency": "INR"}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    first = days[0].isoformat()
    for key, quantity in (("SIM:ALPHA", "100"), ("SIM:BETA", "40")):
        row = {"type": "buy", "instrument": key, "date": first, "quantity": quantity,
               "price": f"{closes[key][0]:.2f}"}  # fmt: skip
        r = await client.post(f"/api/v1/portfolios/{pid}/transactions", json=row,
                              headers=user.headers)  # fmt: skip
        assert r.status_code == 201, r.text

    r = await client.get(f"/api/v1/portfolios/{pid}/risk?confidence=0.99", headers=user.headers)
    assert r.status_code == 200, r.text
    m = r.json()
    value = 100 * closes["SIM:ALPHA"] + 40 * closes["SIM:BETA"]
    expected = value[1:] / value[:-1] - 1  # buy and hold: the TWR is the value's return
    assert m["observations"] == DAYS - 1
    assert m["sharpe"] == pytest.approx(risk.sharpe(expected), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(risk.max_drawdown(expected), rel=1e-9)
    assert m["var_historical"] == pytest.approx(risk.historical_var(expected, 0.99), rel=1e-9)
    # Per holding: the parametric VaR split over the holdings' own bar returns, weighted by
    # today's market value.
    returns = np.column_stack([c[1:] / c[:-1] - 1 for c in closes.values()])
    w = np.array([100 * closes["SIM:ALPHA"][-1], 40 * closes["SIM:BETA"][-1]]) / value[-1]
    split = risk.component_var(w, np.cov(returns, rowvar=False), returns.mean(axis=0), 0.99)
    assert [c["asset"] for c in m["components"]] == ["SIM:ALPHA", "SIM:BETA"]
    assert [c["weight"] for c in m["components"]] == pytest.approx(w.tolist(), rel=1e-9)
    assert [c["component_var"] for c in m["components"]] == pytest.approx(
        split.component.tolist(), rel=1e-9
    )
    assert sum(c["percent_of_var"] for c in m["components"]) == pytest.approx(1.0)

    r = await client.get(
        f"/api/v1/portfolios/{pid}/optimize?objective=min_volatility", headers=user.headers
    )
    assert r.status_code == 200, r.text
    out = r.json()
    weights = opt.MeanVariance(opt.mean_historical(returns), opt.sample_cov(returns))
    assert list(out["weights"].values()) == pytest.approx(
        weights.min_volatility().weights.tolist(), abs=1e-6
    )
    assert out["current_weights"]["SIM:ALPHA"] == pytest.approx(
        100 * closes["SIM:ALPHA"][-1] / value[-1]
    )
    held = {"SIM:ALPHA": Decimal(100), "SIM:BETA": Decimal(40)}
    for trade in out["trades"]:
        sign = 1 if trade["side"] == "buy" else -1
        held[trade["instrument"]] += sign * Decimal(trade["quantity"])
    invested = sum(held[k] * Decimal(f"{closes[k][-1]:.2f}") for k in held)
    assert invested + Decimal(out["leftover"]) == Decimal(out["value"])
    stranger = await make_user("viewer")
    r = await client.get(f"/api/v1/portfolios/{pid}/risk", headers=stranger.headers)
    assert r.status_code == 404

    # One holding: nothing to split, and the answer says so instead of an empty list.
    r = await client.post(
        "/api/v1/portfolios", json={"name": "solo", "currency": "INR"}, headers=user.headers
    )
    solo = r.json()["id"]
    row = {"type": "buy", "instrument": "SIM:ALPHA", "date": first, "quantity": "5",
           "price": f"{closes['SIM:ALPHA'][0]:.2f}"}  # fmt: skip
    r = await client.post(f"/api/v1/portfolios/{solo}/transactions", json=row,
                          headers=user.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    m = (await client.get(f"/api/v1/portfolios/{solo}/risk", headers=user.headers)).json()
    assert m["components"] is None
    assert m["skipped"] == ["components: fewer than two priced holdings (options aside)"]


@pytest.mark.usefixtures("sim_market")
async def test_portfolio_option_book_by_full_revaluation(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    await list_options(app)
    ctx: AppContext = app.state.ctx
    now = dt.datetime.now(dt.UTC)
    for key, last in (("SIM:SIMIDX", "20000"), (OPTION, "410.05")):
        await QuoteService(ctx.cache, ctx.bus).publish_one(Quote(key, Decimal(last), now))
    user = await make_user("trader")
    r = await client.post(
        "/api/v1/portfolios", json={"name": "fno", "currency": "INR"}, headers=user.headers
    )
    pid = r.json()["id"]
    row = {"type": "buy", "instrument": OPTION, "date": now.date().isoformat(),
           "quantity": "100", "price": "400"}  # fmt: skip
    r = await client.post(f"/api/v1/portfolios/{pid}/transactions", json=row, headers=user.headers)
    assert r.status_code == 201, r.text
    r = await client.get(
        f"/api/v1/portfolios/{pid}/scenarios?simulations=500", headers=user.headers
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["underlyings"] == ["SIMIDX"]
    iv = out["monte_carlo"]["volatilities"]["SIMIDX"]
    t = years_to_expiry(Exchange.SIM, EXPIRY, utcnow())
    assert float(price("call", 20000.0, 20000, t, 0.065, iv)) == pytest.approx(410.05, abs=0.01)
    i = out["underlying_moves"].index(pytest.approx(-0.1))
    expected = 100 * (float(price("call", 18000.0, 20000, t, 0.065, iv)) - 410.05)
    assert float(out["pnl"][0][i][10]) == pytest.approx(expected, rel=1e-4)
