"""The currency effect of a period: a USD holding in an INR portfolio whose price and
USD/INR both move, the period's gain and TWR split into the asset's part (its own gain at
the previous day's rate) and the currency's, worked by hand (pure and through the API)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import httpx
import pytest

from quantdesk.portfolios.accounting.lots import build_book
from quantdesk.portfolios.accounting.returns import (
    InstrumentInfo,
    Observations,
    daily_series,
    performance,
)
from quantdesk.portfolios.accounting.types import Transaction as T  # noqa: N817
from quantdesk.portfolios.accounting.types import TxnType
from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create

D = Decimal
AAPL = "NASDAQ:AAPL"
D0 = dt.date(2024, 1, 1)


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n)


def test_gain_and_twr_split_into_asset_and_currency() -> None:
    """Buy 10 @ 100 USD (USD/INR 80) on day 0; closes 110 (84) on day 1; buy 10 @ 110 (84)
    on day 2, close 121; sell 5 @ 121 (80) at the end of day 3, close 121."""
    txns = [
        T("b1", TxnType.BUY, day(0), "a", AAPL, D(10), D(100), fx_rate=D(80), currency="USD"),
        T("b2", TxnType.BUY, day(2), "a", AAPL, D(10), D(110), fx_rate=D(84), currency="USD"),
        T("s1", TxnType.SELL, day(3), "a", AAPL, D(5), D(121), fx_rate=D(80), currency="USD"),
    ]
    closes = Observations.of({day(0): 100.0, day(1): 110.0, day(2): 121.0, day(3): 121.0})
    usd_inr = Observations.of({day(0): 80.0, day(1): 84.0, day(3): 80.0})
    info = {AAPL: InstrumentInfo(AAPL, currency="USD")}
    series = daily_series(build_book(txns).effects, info, {AAPL: closes}, {"USD": usd_inr}, day(3))
    # Day 1: 1,100 USD held over the move 80 -> 84 is 4,400 of the 12,400 gained; the
    # asset's 8,000 is its 100 USD at the day's starting 80.  Day 2: no move.  Day 3: what
    # was held over 84 -> 80 is the 1,815 USD kept and the 605 sold at the close.
    assert series.fx_gain.tolist() == pytest.approx([0.0, 4_400.0, 0.0, -9_680.0], abs=1e-9)
    figures = performance(series, day(0), day(3))
    # End 15 x 121 x 80 = 145,200; flows 80,000 + 92,400 - 48,400 = 124,000.
    assert figures.net_performance == pytest.approx(21_200.0)
    assert figures.fx_effect == pytest.approx(-5_280.0)
    assert figures.asset_performance == pytest.approx(8_000.0 + 220 * 84)
    # Day returns 0, 0.155, 0.1, 80/84 - 1; at the day's starting rate 0, 0.1, 0.1, 0:
    # (1 + r) = (1 + r_local)(1 + r_fx) with r_fx the rate's move, 0.05 and 80/84 - 1.
    assert figures.twr == pytest.approx(1.155 * 1.1 * 80 / 84 - 1, abs=1e-12)
    assert figures.twr_local == pytest.approx(0.21, abs=1e-12)
    assert figures.twr_fx == pytest.approx(0.0, abs=1e-12)  # back to 80 over the range
    # From day 2 on: only the fall of the rate, on a book the price did not move.
    later = performance(series, day(2), day(3))
    assert later.twr_local == pytest.approx(0.1, abs=1e-12)
    assert later.twr_fx == pytest.approx(80 / 84 - 1, abs=1e-12)
    assert later.fx_effect == pytest.approx(-9_680.0)
    # A portfolio in the instrument's own currency has no currency effect.
    same = daily_series(
        build_book(txns).effects, {AAPL: InstrumentInfo(AAPL)}, {AAPL: closes}, {}, day(3)
    )
    flat = performance(same, day(0), day(3))
    assert flat.fx_effect == 0.0
    assert flat.twr_fx == pytest.approx(0.0, abs=1e-15)
    assert flat.twr_local == flat.twr


async def test_performance_reports_the_fx_effect(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    """Through the API, prices from the trades: buy 10 @ 100 (80) on 1 January, buy 10 @
    110 (84) on the 2nd, sell 5 @ 121 (80) on the 3rd; rates looked up from the stored ones."""
    admin, user = await make_user("admin"), await make_user()
    rates = [
        {"base": "USD", "quote": "INR", "date": str(day(n)), "rate": rate}
        for n, rate in ((0, "80"), (1, "84"), (2, "80"))
    ]
    r = await client.post(f"{BASE}/fx-rates", json={"rates": rates}, headers=admin.headers)
    assert r.status_code == 200, r.text
    pid = (await create(client, user))["id"]
    trades = (("buy", 0, "10", "100"), ("buy", 1, "10", "110"), ("sell", 2, "5", "121"))
    for kind, n, quantity, price in trades:
        body = {
            "type": kind,
            "instrument": AAPL,
            "date": str(day(n)),
            "quantity": quantity,
            "price": price,
        }
        r = await client.post(f"{BASE}/{pid}/transactions", json=body, headers=user.headers)
        assert r.status_code == 201, r.text
    params = {"from": str(day(0)), "to": str(day(2))}
    r = await client.get(f"{BASE}/{pid}/performance", params=params, headers=user.headers)
    assert r.status_code == 200, r.text
    perf = r.json()
    # Day 1: 1,100 USD held from day 0 over 80 -> 84: 4,400; day 2: the 1,815 kept and 605
    # sold over 84 -> 80: -9,680.  The rest of the 21,200 is the shares' own gain.
    assert perf["net_performance"] == "21200.00"
    assert (perf["fx_effect"], perf["asset_performance"]) == ("-5280.00", "26480.00")
    # Starting capital 80,000 + 92,400 on day 1 (ends at 184,800, 4,400 of it the rate's),
    # 184,800 on day 2 (ends at 145,200 + 48,400 out, -9,680 of it the rate's).
    twr = Fraction(184_800, 172_400) * Fraction(193_600, 184_800) - 1
    local = Fraction(180_400, 172_400) * Fraction(203_280, 184_800) - 1
    assert Decimal(perf["twr"]) == pytest.approx(Decimal(float(twr)), abs=D("1e-10"))
    assert Decimal(perf["twr_local"]) == pytest.approx(Decimal(float(local)), abs=D("1e-10"))
    fx = (1 + twr) / (1 + local) - 1
    assert Decimal(perf["twr_fx"]) == pytest.approx(Decimal(float(fx)), abs=D("1e-10"))
    periods = (
        await client.get(
            f"{BASE}/{pid}/performance/periods", params={"to": str(day(2))}, headers=user.headers
        )
    ).json()["periods"]
    assert periods[-1]["period"] == "max"
    assert (periods[-1]["fx_effect"], periods[-1]["twr_fx"]) == (perf["fx_effect"], perf["twr_fx"])
