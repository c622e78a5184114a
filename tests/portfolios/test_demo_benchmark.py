"""The S&P 500 as a benchmark in the demo: a USD portfolio holding SPY against
``NYSE:SPX`` from the loaded demo data, the figures against the generator's own closes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.domain import InstrumentType, Timeframe
from quantdesk.marketdata.providers.demo.loader import load_demo
from quantdesk.marketdata.providers.demo.market import DemoMarket
from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create

SEED = 424_242
ANCHOR = dt.date(2026, 6, 17)


def session_day(ts: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date()  # 00:00 UTC of the session date


async def test_spy_against_the_sp500_index(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    market = DemoMarket(SEED, ANCHOR)
    index = market.instrument("NYSE:SPX")
    assert (index.type, index.currency, index.name) == (InstrumentType.INDEX, "USD", "S&P 500")
    await load_demo(
        app.state.ctx,
        seed=SEED,
        anchor=ANCHOR,
        market=market,
        daily_years=1,
        minute_sessions=1,
        options=False,
    )
    last = market.last_index(market.underlyings["NYSE:SPX"])
    spx = market.bars("NYSE:SPX", Timeframe.D1, last - 30, last)
    spy = market.bars("NYSE:SPY", Timeframe.D1, last - 30, last)
    assert spx.ts.tolist() == spy.ts.tolist()  # one US calendar
    days = [session_day(int(t)) for t in spx.ts.tolist()]
    buy, end = 10, len(days) - 1  # bought at the close of the 11th of 31 sessions
    user = await make_user()
    pid = (await create(client, user, currency="USD"))["id"]
    trade = {
        "type": "buy",
        "instrument": "NYSE:SPY",
        "date": str(days[buy]),
        "quantity": "10",
        "price": f"{spy.close[buy]:.2f}",
    }
    r = await client.post(f"{BASE}/{pid}/transactions", json=trade, headers=user.headers)
    assert r.status_code == 201, r.text
    params = {"instrument": "NYSE:SPX", "from": str(days[buy]), "to": str(days[end])}
    r = await client.get(f"{BASE}/{pid}/benchmark", params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    result = r.json()
    # Bought at the close: the portfolio's TWR is SPY's close to close; the index's return
    # runs from the close before the range; the 10 SPY's cost buys the index at that close.
    spy_return = spy.close[end] / spy.close[buy] - 1
    spx_return = spx.close[end] / spx.close[buy - 1] - 1
    tight = Decimal("1e-9")
    assert Decimal(result["portfolio_twr"]) == pytest.approx(Decimal(spy_return), abs=tight)
    assert Decimal(result["benchmark_twr"]) == pytest.approx(Decimal(spx_return), abs=tight)
    units = 10 * round(float(spy.close[buy]), 2) / spx.close[buy]
    assert Decimal(result["benchmark_value"]) == pytest.approx(
        Decimal(units * spx.close[end]), abs=Decimal("0.01")
    )
    assert result["observations"] == end - buy + 1  # the index's sessions in the range
    assert result["beta"] is not None
    # Each day valued at its own session's close (a US bar's 00:00 UTC is the evening
    # before in New York: not the day it is dated).
    r = await client.get(f"{BASE}/{pid}/series", params=params, headers=user.headers)
    values = dict(zip(r.json()["dates"], r.json()["market_value"], strict=True))
    for n in (buy, buy + 1, end):
        assert Decimal(values[str(days[n])]) == pytest.approx(
            Decimal(10 * spy.close[n]), abs=Decimal("0.01")
        )
