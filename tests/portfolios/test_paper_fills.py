"""Paper-trading fills flow into a portfolio by themselves: the fills before the link and
every fill after it, each once, with the fill's price, fee and execution id."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from quantdesk.portfolios.paper import market_today
from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE
from tests.trading.conftest import Desk


async def test_fills_flow_into_the_portfolio(desk: Desk, make_user: UserFactory) -> None:
    client, headers = desk.client, desk.trader.headers
    await desk.place(instrument="SIM:ALPHA", side="buy", quantity=10, type="market")
    assert len(await desk.fills()) == 1
    r = await client.post(BASE, json={"name": "with paper"}, headers=headers)
    pid = r.json()["id"]
    r = await client.post(
        f"{BASE}/{pid}/accounts",
        json={"name": "Paper", "kind": "paper", "trading_account_id": desk.account_id},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    await desk.place(instrument="SIM:ALPHA", side="buy", quantity=5, type="market")
    assert len(await desk.fills()) == 2
    for _ in range(2):  # read twice: each fill is taken once
        holdings = (await client.get(f"{BASE}/{pid}/holdings", headers=headers)).json()
    (item,) = holdings["items"]
    assert (item["instrument"], item["quantity"]) == ("SIM:ALPHA", "15")
    assert Decimal(item["cost_basis"]) == Decimal("100.05") * 15
    page = (await client.get(f"{BASE}/{pid}/transactions", headers=headers)).json()
    assert [(t["source"], t["type"], t["quantity"]) for t in page["items"]] == [
        ("paper", "buy", "5"),
        ("paper", "buy", "10"),
    ]
    assert all(t["external_id"].startswith("paper:") for t in page["items"])
    # Another user cannot link this trading account: it is not found for them.
    other = await make_user()
    r = await client.post(BASE, json={"name": "theirs"}, headers=other.headers)
    r = await client.post(
        f"{BASE}/{r.json()['id']}/accounts",
        json={"name": "Paper", "kind": "paper", "trading_account_id": desk.account_id},
        headers=other.headers,
    )
    assert r.status_code == 404, r.text


def test_today_is_the_latest_market_date() -> None:
    # 00:30 in Mumbai on the 4th while New York and UTC are still on the 3rd: an NSE fill
    # made now is dated the 4th, and holdings valued "today" must include it.
    assert market_today(dt.datetime(2026, 12, 3, 19, 0, tzinfo=dt.UTC)) == dt.date(2026, 12, 4)
    assert market_today(dt.datetime(2026, 12, 3, 18, 29, tzinfo=dt.UTC)) == dt.date(2026, 12, 3)
    # 23:00 in New York on the 3rd is the 4th in UTC and in Mumbai.
    assert market_today(dt.datetime(2026, 12, 4, 4, 0, tzinfo=dt.UTC)) == dt.date(2026, 12, 4)
