"""A USD holding in an INR portfolio (cost at the trade date's rate, value at today's, the
currency's part of the P&L separated) and a benchmark with daily bars over the same flows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import BarArrays, Timeframe
from quantdesk.platform.context import AppContext
from quantdesk.portfolios.demo_fx import demo_usd_inr, load_demo_rates
from quantdesk.portfolios.repository import FxRates
from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create, quote


async def test_usd_holding_in_an_inr_portfolio(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    admin, user = await make_user("admin"), await make_user()
    rates = [
        {"base": "USD", "quote": "INR", "date": "2024-01-01", "rate": "80"},
        {"base": "USD", "quote": "INR", "date": "2024-06-01", "rate": "85"},
    ]
    r = await client.post(f"{BASE}/fx-rates", json={"rates": rates}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (
        await client.post(f"{BASE}/fx-rates", json={"rates": rates}, headers=user.headers)
    ).status_code == 403
    pid = (await create(client, user))["id"]
    buy = {
        "type": "buy",
        "instrument": "NASDAQ:AAPL",
        "date": "2024-01-02",
        "quantity": "10",
        "price": "100",
    }
    r = await client.post(f"{BASE}/{pid}/transactions", json=buy, headers=user.headers)
    assert r.status_code == 201, r.text
    assert (r.json()["currency"], r.json()["fx_rate"]) == ("USD", "80")
    await quote(app, "NASDAQ:AAPL", "110")
    (item,) = (await client.get(f"{BASE}/{pid}/holdings", headers=user.headers)).json()["items"]
    # Cost 10 x 100 x 80; value 10 x 110 x 85; of the 13,500 gained, 10 x 110 x 5 is the
    # currency's and 10 x 10 x 80 the share's.
    assert (item["cost_basis"], item["market_value"]) == ("80000.00", "93500.00")
    assert (item["unrealized_pnl"], item["fx_effect"]) == ("13500.00", "5500.00")
    usd = await create(client, user, currency="USD")
    r = await client.post(
        f"{BASE}/{usd['id']}/transactions",
        headers=user.headers,
        json={**buy, "instrument": "NSE:ACME", "date": "2023-12-01"},
    )
    assert r.status_code == 422, r.text  # no INR/USD rate on or before that day
    assert r.json()["field"] == "fx_rate"


@pytest.mark.usefixtures("sim_market")
async def test_benchmark_over_the_same_flows(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=n) for n in range(30)]
    ts = np.array([int(dt.datetime.combine(d, dt.time(), dt.UTC).timestamp()) for d in days])
    alpha = np.round(100 * 1.01 ** np.arange(30), 2)
    beta = np.round(200 * 1.005 ** np.arange(30), 2)
    ctx: AppContext = app.state.ctx
    async with ctx.database.session(immediate=True) as db:
        for key, close in (("SIM:ALPHA", alpha), ("SIM:BETA", beta)):
            bars = BarArrays(ts, close, close, close, close, np.full(30, 1e4))
            await BarStore(db).bulk_load(key, Timeframe.D1, bars)
    user = await make_user()
    pid = (await create(client, user))["id"]
    buy = {
        "type": "buy",
        "instrument": "SIM:ALPHA",
        "date": "2024-01-01",
        "quantity": "10",
        "price": f"{alpha[0]:.2f}",
    }
    assert (
        await client.post(f"{BASE}/{pid}/transactions", json=buy, headers=user.headers)
    ).status_code == 201
    params = {"instrument": "SIM:BETA", "from": "2024-01-01", "to": "2024-01-30"}
    r = await client.get(f"{BASE}/{pid}/benchmark", params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    result = r.json()
    assert Decimal(result["portfolio_twr"]) == pytest.approx(
        Decimal(alpha[-1] / alpha[0] - 1), abs=Decimal("1e-9")
    )
    assert Decimal(result["benchmark_twr"]) == pytest.approx(
        Decimal(beta[-1] / beta[0] - 1), abs=Decimal("1e-9")
    )
    # The 1,000 of the buy, in the benchmark instead: 1000 / 200 units at the last close.
    assert Decimal(result["benchmark_value"]) == pytest.approx(
        Decimal(1000 / beta[0] * beta[-1]), abs=Decimal("0.01")
    )
    perf = (
        await client.get(
            f"{BASE}/{pid}/performance",
            params={"from": "2024-01-01", "to": "2024-01-30"},
            headers=user.headers,
        )
    ).json()
    assert perf["twr"] == result["portfolio_twr"]
    periods = (
        await client.get(
            f"{BASE}/{pid}/performance/periods", params={"to": "2024-01-30"}, headers=user.headers
        )
    ).json()["periods"]
    assert [p["period"] for p in periods] == ["today", "wtd", "mtd", "ytd", "1y", "3y", "5y", "max"]
    assert periods[-1]["twr"] == perf["twr"]
    assert periods[2]["from"] == "2024-01-01"
    r = await client.get(
        f"{BASE}/{pid}/benchmark", params={**params, "instrument": "NSE:NONE"}, headers=user.headers
    )
    assert r.status_code == 404


async def test_demo_rates(app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    until = dt.date(2025, 12, 31)
    rates = demo_usd_inr(until)
    assert rates[dt.date(2020, 1, 1)] == Decimal("71.0000")
    assert abs(rates[dt.date(2025, 11, 3)] - 88) < Decimal("0.01")
    assert await load_demo_rates(ctx.database, until) == len(rates)
    assert await load_demo_rates(ctx.database, until) == 0  # idempotent
    async with ctx.database.session() as db:
        assert (
            await FxRates(db).on_or_before("INR", "USD", dt.date(2025, 11, 3))
            == 1 / rates[dt.date(2025, 11, 3)]
        )
