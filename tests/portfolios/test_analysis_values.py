"""Analysis figures by value, worked by hand: the drawdown series, the benchmark's beta and
tracking error, annualised TWR and Modified Dietz over a range longer than a year, and the
allocation by instrument type, exchange and currency."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.instruments.importers import parse_instruments
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.portfolios.accounting.lots import build_book
from quantdesk.portfolios.accounting.returns import (
    InstrumentInfo,
    Observations,
    compare,
    daily_series,
    performance,
)
from quantdesk.portfolios.accounting.types import Transaction as T  # noqa: N817
from quantdesk.portfolios.accounting.types import TxnType
from tests.conftest import TestUser, UserFactory
from tests.portfolios.test_portfolios_api import BASE, create

D = Decimal
X = "NSE:ACME"
D0 = dt.date(2022, 1, 1)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def held_from_day_0(closes: dict[int, float], end: int):  # type: ignore[no-untyped-def]
    """10 bought at the first close on day 0, held to ``end``."""
    txns = [T("b1", TxnType.BUY, day(0), "a", X, D(10), D(repr(closes[0])))]
    prices = Observations.of({day(n): c for n, c in closes.items()})
    return daily_series(build_book(txns).effects, {X: InstrumentInfo(X)}, {X: prices}, {}, day(end))


def test_drawdown_from_the_running_peak() -> None:
    # TWR index 1, 1.2, 0.9, 1.08, 1.32: down 25% from the 1.2 peak, 10% still on day 3.
    series = held_from_day_0({0: 100.0, 1: 120.0, 2: 90.0, 3: 108.0, 4: 132.0}, 4)
    np.testing.assert_allclose(series.cumulative_twr, [0.0, 0.2, -0.1, 0.08, 0.32], atol=1e-12)
    np.testing.assert_allclose(series.drawdown, [0.0, 0.0, -0.25, -0.1, 0.0], atol=1e-12)


def test_beta_and_tracking_error_by_hand() -> None:
    # Portfolio returns 0.1, -0.1, 0.1 on the benchmark's sessions; the benchmark's 0.05,
    # -0.05, 0.1.  Deviations from the means (1/30 both): (1, -2, 1)/15 and (1, -5, 4)/60:
    # covariance 15/900/2 = 1/120, the benchmark's variance 42/3600/2 = 7/1200, beta 10/7.
    # Active returns 0.05, -0.05, 0: sample deviation 0.05, annualised by sqrt(252).
    series = held_from_day_0({0: 100.0, 1: 110.0, 2: 99.0, 3: 108.9}, 3)
    bench = Observations.of({day(0): 50.0, day(1): 52.5, day(2): 49.875, day(3): 54.8625})
    twr = performance(series, day(0), day(3)).twr
    result = compare(series, bench, day(0), day(3), twr)
    assert result.observations == 4
    assert result.beta == pytest.approx(10 / 7, rel=1e-12)
    assert result.tracking_error == pytest.approx(0.05 * math.sqrt(252), rel=1e-12)
    # A session missing (a holiday): returns run between the sessions there are, days 0, 1, 3.
    holiday = Observations.of({day(0): 50.0, day(1): 52.5, day(3): 54.8625})
    gapped = compare(series, holiday, day(0), day(3), twr)
    assert gapped.observations == 3
    # Portfolio 0.1 and 108.9/110 - 1 = -0.01; benchmark 0.05 and 54.8625/52.5 - 1 = 0.045.
    rp, rb = np.array([0.1, -0.01]), np.array([0.05, 0.045])
    assert gapped.beta == pytest.approx(
        float(np.cov(rp, rb, ddof=1)[0, 1] / np.var(rb, ddof=1)), rel=1e-9
    )
    assert gapped.beta == pytest.approx((0.11 * 0.005 / 2) / (0.005**2 / 2), rel=1e-9)
    assert gapped.tracking_error == pytest.approx(
        float(np.std(rp - rb, ddof=1)) * math.sqrt(252), rel=1e-9
    )


def test_annualised_over_two_years_by_hand() -> None:
    # 730 days (both ends included): annualised is the square root of the total.
    txns = [
        T("b1", TxnType.BUY, day(0), "a", X, D(10), D(100)),
        T("b2", TxnType.BUY, day(365), "a", X, D(10), D(110)),
    ]
    # Up 10% by day 364, bought more on day 365 at that price, up 10% again by day 729.
    prices = Observations.of({day(0): 100.0, day(364): 110.0, day(729): 121.0})
    series = daily_series(
        build_book(txns).effects, {X: InstrumentInfo(X)}, {X: prices}, {}, day(729)
    )
    figures = performance(series, day(0), day(729))
    assert figures.days == 730
    assert figures.annualised
    assert figures.twr == pytest.approx(0.21, abs=1e-12)
    assert figures.twr_annualised == pytest.approx(0.1, abs=1e-12)
    # Modified Dietz: 320 gained on 1000 for the whole range and 1100 for half of it.
    assert figures.modified_dietz == pytest.approx(320 / 1550, abs=1e-12)
    assert figures.modified_dietz_annualised == pytest.approx(math.sqrt(1870 / 1550) - 1, abs=1e-12)
    year = performance(series, day(0), day(364))
    assert (year.days, year.annualised, year.twr_annualised) == (365, False, None)


async def post(client: httpx.AsyncClient, user: TestUser, pid: str, **row: Any) -> None:
    r = await client.post(f"{BASE}/{pid}/transactions", json=row, headers=user.headers)
    assert r.status_code == 201, r.text


async def test_annualised_through_the_api(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    for kind, date, quantity, price in (
        ("buy", day(0), "10", "100"),
        ("buy", day(365), "10", "110"),
        ("sell", day(729), "5", "121"),
    ):
        await post(
            client, user, pid, type=kind, instrument=X, date=str(date), quantity=quantity,
            price=price,
        )  # fmt: skip
    params = {"from": str(day(0)), "to": str(day(729))}
    perf = (
        await client.get(f"{BASE}/{pid}/performance", params=params, headers=user.headers)
    ).json()
    # Prices from the trades: day 365 starts with 1000 + 1100 and ends at 2200; day 729
    # ends at 1815 + 605 out.  Modified Dietz: 320 on 1000 + 1100 x 365/730 (the sale at
    # the end of the last day weighs nothing).
    twr = 2200 / 2100 * 1.1 - 1
    assert (perf["days"], perf["annualized"]) == (730, True)
    assert D(perf["twr"]) == pytest.approx(D(twr), abs=D("1e-10"))
    assert D(perf["twr_annualized"]) == pytest.approx(D(math.sqrt(1 + twr) - 1), abs=D("1e-10"))
    assert D(perf["modified_dietz"]) == pytest.approx(D(320 / 1550), abs=D("1e-10"))
    assert D(perf["modified_dietz_annualized"]) == pytest.approx(
        D(math.sqrt(1870 / 1550) - 1), abs=D("1e-10")
    )


MASTER = """exchange,symbol,type,name
NSE,ACME,equity,Acme Ltd
NSE,NIFTYBEES,etf,Nippon India ETF Nifty BeES
NASDAQ,AAPL,equity,Apple Inc.
"""


async def test_allocation_by_type_exchange_and_currency(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    async with app.state.ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(parse_instruments(MASTER).instruments)
    user = await make_user()
    pid = (await create(client, user))["id"]
    on = "2024-03-01"
    await post(client, user, pid, type="deposit", date=on, amount="20000")
    # 4,000 + 3,000 in rupees, 100 USD at 80 = 8,000; 5,000 of the deposit left in cash.
    await post(client, user, pid, type="buy", instrument="NSE:ACME", date=on, quantity="20",
               price="200")  # fmt: skip
    await post(client, user, pid, type="buy", instrument="NSE:NIFTYBEES", date=on,
               quantity="30", price="100")  # fmt: skip
    await post(client, user, pid, type="buy", instrument="NASDAQ:AAPL", date=on, quantity="1",
               price="100", fx_rate="80")  # fmt: skip
    r = await client.get(f"{BASE}/{pid}/allocation", params={"date": on}, headers=user.headers)
    assert r.status_code == 200, r.text
    allocation = r.json()
    assert D(allocation["market_value"]) == 20_000

    def slices(group: str) -> list[tuple[str, Decimal, Decimal]]:
        return [(s["key"], D(s["market_value"]), D(s["weight"])) for s in allocation[group]]

    # Weights are shares of the whole, cash included: the groups without a cash slice
    # (type, exchange) add up to the securities' 75%.
    assert slices("instrument_type") == [
        ("equity", D(12_000), D("0.6")),
        ("etf", D(3_000), D("0.15")),
    ]
    assert slices("exchange") == [("NASDAQ", D(8_000), D("0.4")), ("NSE", D(7_000), D("0.35"))]
    assert slices("currency_exposure") == [
        ("INR", D(12_000), D("0.6")),
        ("USD", D(8_000), D("0.4")),
    ]
    assert slices("asset_class") == [
        ("equity", D(12_000), D("0.6")),
        ("cash", D(5_000), D("0.25")),
        ("fund", D(3_000), D("0.15")),
    ]
