"""The portfolio API end to end on the real app: the worked example through HTTP (exact
decimal strings), tenancy, optimistic edits, recomputation on edit and delete, imports
(all or nothing, dry run, duplicates), exports, performance, allocation and charts."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from tests.conftest import UserFactory
from tests.support.factories import TestUser

BASE = "/api/v1/portfolios"

WORKED = [
    {
        "type": "buy",
        "instrument": "NSE:ACME",
        "date": "2024-01-02",
        "quantity": "100",
        "price": "50",
        "fees": "5",
    },
    {
        "type": "buy",
        "instrument": "NSE:ACME",
        "date": "2024-02-01",
        "quantity": "50",
        "price": "60",
        "fees": "5",
    },
    {"type": "dividend", "instrument": "NSE:ACME", "date": "2024-03-01", "price": "1.00"},
    {"type": "split", "instrument": "NSE:ACME", "date": "2024-04-01", "ratio": "2"},
    {
        "type": "buy",
        "instrument": "NSE:ACME",
        "date": "2024-05-02",
        "quantity": "100",
        "price": "24",
        "fees": "5",
    },
    {
        "type": "sell",
        "instrument": "NSE:ACME",
        "date": "2025-03-03",
        "quantity": "250",
        "price": "32",
        "fees": "10",
    },
]


async def create(
    client: httpx.AsyncClient, user: TestUser, method: str = "fifo", **extra: Any
) -> dict[str, Any]:
    body = {"name": f"p-{uuid.uuid4().hex[:6]}", "currency": "INR", "lot_method": method, **extra}
    r = await client.post(BASE, json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def post_all(
    client: httpx.AsyncClient, user: TestUser, pid: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        r = await client.post(f"{BASE}/{pid}/transactions", json=row, headers=user.headers)
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


async def quote(app: FastAPI, key: str, last: str, prev_close: str | None = None) -> None:
    ctx: AppContext = app.state.ctx
    await QuoteService(ctx.cache, ctx.bus).publish_one(
        Quote(
            key,
            Decimal(last),
            dt.datetime.now(dt.UTC),
            prev_close=Decimal(prev_close) if prev_close else None,
        )
    )


async def test_worked_example_through_the_api(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    await quote(app, "NSE:ACME", "35", "34")
    expected = {
        "fifo": ("1482.50", "1342.50", "3907.50"),
        "lifo": ("1328.75", "1496.25", "3753.75"),
        "hifo": ("1231.25", "1593.75", "3656.25"),
        "average": ("1480.625", "1344.375", "3905.625"),
    }
    fifo: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
    for method, (realised, unrealised, cost) in expected.items():
        pid = (await create(client, user, method))["id"]
        posted = await post_all(client, user, pid, WORKED)
        r = await client.get(
            f"{BASE}/{pid}/holdings", params={"lots": "true"}, headers=user.headers
        )
        assert r.status_code == 200, r.text
        holdings = r.json()
        (item,) = holdings["items"]
        assert (item["instrument"], item["quantity"], item["price"]) == ("NSE:ACME", "150", "35")
        assert (item["cost_basis"], item["unrealized_pnl"]) == (cost, unrealised)
        assert item["market_value"] == "5250.00"
        assert holdings["realized_pnl"] == realised
        assert holdings["income"] == "150.00"
        assert item["day_change"] == "150.00"
        gains = (await client.get(f"{BASE}/{pid}/gains", headers=user.headers)).json()
        assert gains["realized_pnl"] == realised
        if method == "fifo":
            fifo = (posted, gains)
        r = await client.get(f"{BASE}/{pid}/gains", params={"format": "csv"}, headers=user.headers)
        assert r.headers["content-type"].startswith("text/csv")
        assert r.text.splitlines()[0].startswith("financial_year,term")
    # FIFO's sale: the first buy's 200 (post-split) shares, then 50 of the second's 100, both
    # held more than 12 months on 2025-03-03 (long term), in India's FY2024-25 (April-March).
    # Proceeds 250 x 32 - 10 = 7,990 shared by quantity: 6,392 and 1,598; costs 5,005 and
    # half of 3,005.
    assert fifo is not None
    posted, gains = fifo
    (sale,) = gains["sales"]
    assert (sale["quantity"], sale["proceeds"], sale["cost"]) == ("250", "7990.00", "6507.50")
    assert [
        (lot["lot_id"], lot["opened"], lot["quantity"], lot["cost"], lot["proceeds"],
         lot["realized_pnl"], lot["holding_days"], lot["term"], lot["financial_year"])
        for lot in sale["lots"]
    ] == [
        (posted[0]["id"], "2024-01-02", "200", "5005.00", "6392.00", "1387.00", 426, "long",
         "FY2024-25"),
        (posted[1]["id"], "2024-02-01", "50", "1502.50", "1598.00", "95.50", 396, "long",
         "FY2024-25"),
    ]  # fmt: skip
    assert (gains["long_term"], gains["short_term"]) == ("1482.50", "0.00")


async def test_tenancy_versions_and_recompute(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    owner, other = await make_user(), await make_user()
    portfolio = await create(client, owner)
    pid = portfolio["id"]
    assert (await client.get(f"{BASE}/{pid}", headers=other.headers)).status_code == 404
    r = await client.post(f"{BASE}/{pid}/transactions", json=WORKED[0], headers=other.headers)
    assert r.status_code == 404
    buy, sell = await post_all(
        client,
        owner,
        pid,
        [
            WORKED[0],
            {
                "type": "sell",
                "instrument": "NSE:ACME",
                "date": "2024-03-01",
                "quantity": "60",
                "price": "55",
            },
        ],
    )
    # A sell of more than is held is refused, and so is an edit that would make one.
    r = await client.post(
        f"{BASE}/{pid}/transactions",
        headers=owner.headers,
        json={
            "type": "sell",
            "instrument": "NSE:ACME",
            "date": "2024-03-02",
            "quantity": "41",
            "price": "55",
        },
    )
    assert r.status_code == 422, r.text
    assert "exceeds" in r.json()["detail"]
    url = f"{BASE}/{pid}/transactions/{buy['id']}"
    r = await client.patch(url, json={"version": 1, "quantity": "50"}, headers=owner.headers)
    assert r.status_code == 422, r.text
    assert (await client.delete(url, headers=owner.headers)).status_code == 422
    # A good edit recomputes the sale; a stale version is 409.
    r = await client.patch(url, json={"version": 1, "price": "40"}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    r = await client.patch(url, json={"version": 1, "price": "41"}, headers=owner.headers)
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    gains = (await client.get(f"{BASE}/{pid}/gains", headers=owner.headers)).json()
    # 60 x 55 - 60 x (40 + 5/100) = 3300 - 2403.
    assert gains["realized_pnl"] == "897.00"
    page = (
        await client.get(f"{BASE}/{pid}/transactions", params={"limit": 1}, headers=owner.headers)
    ).json()
    assert page["items"][0]["id"] == sell["id"]
    assert page["next_cursor"]
    page = (
        await client.get(
            f"{BASE}/{pid}/transactions",
            headers=owner.headers,
            params={"limit": 1, "cursor": page["next_cursor"]},
        )
    ).json()
    assert page["items"][0]["id"] == buy["id"]
    assert page["next_cursor"] is None
    r = await client.get(
        f"{BASE}/{pid}/transactions", params={"type": "sell"}, headers=owner.headers
    )
    assert [t["type"] for t in r.json()["items"]] == ["sell"]
    # Ranges are bounded: a series runs day by day.
    for params in ({"from": "0001-01-01"}, {"to": "9999-12-31"}):
        r = await client.get(f"{BASE}/{pid}/series", params=params, headers=owner.headers)
        assert r.status_code == 422, r.text
    del_url = f"{BASE}/{pid}/transactions/{sell['id']}"
    assert (await client.delete(del_url, headers=owner.headers)).status_code == 204
    assert (await client.delete(url, headers=owner.headers)).status_code == 204


CSV = """date,type,instrument,quantity,price,fees,amount,account
2024-01-02,deposit,,,,,100000,Broker
2024-01-02,buy,NSE:ACME,100,50,5,,Broker
2024-02-01,buy,NSE:ACME,50,60,5,,Broker
2024-06-03,sell,NSE:ACME,30,70,2,,Broker
"""


def upload(text: str, name: str = "t.csv") -> dict[str, Any]:
    return {"file": (name, text.encode(), "text/csv")}


async def test_imports_exports_and_reports(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    url = f"{BASE}/{pid}/imports"
    # All or nothing, with line numbers.
    bad = CSV + "2024-13-01,buy,NSE:ACME,1,1,,,\n2024-07-01,sell,NSE:ACME,x,1,,,\n"
    r = await client.post(url, files=upload(bad), headers=user.headers)
    assert r.status_code == 422, r.text
    assert [e["line"] for e in r.json()["errors"]] == [6, 7]
    r = await client.post(
        url, files=upload(CSV + "2024-07-01,sell,NSE:ACME,500,1,,,Broker\n"), headers=user.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["line"] == 6
    # A dry run shows what would be created and writes nothing.
    r = await client.post(url, params={"dry_run": "true"}, files=upload(CSV), headers=user.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["dry_run"]) == (4, True)
    assert (await client.get(f"{BASE}/{pid}/transactions", headers=user.headers)).json()[
        "items"
    ] == []
    r = await client.post(url, files=upload(CSV), headers=user.headers)
    assert r.json()["created"] == 4
    # Again: every line is a duplicate, skipped and reported.
    r = await client.post(url, files=upload(CSV), headers=user.headers)
    assert r.json()["created"] == 0
    assert [s["line"] for s in r.json()["skipped"]] == [2, 3, 4, 5]
    # Export as CSV imports back into a new portfolio to the same holdings.
    exported = (await client.get(f"{BASE}/{pid}/export", headers=user.headers)).text
    other = (await create(client, user))["id"]
    r = await client.post(f"{BASE}/{other}/imports", files=upload(exported), headers=user.headers)
    assert r.json()["created"] == 4, r.text
    holdings = [
        (await client.get(f"{BASE}/{p}/holdings", headers=user.headers)).json()
        for p in (pid, other)
    ]
    assert holdings[0]["items"] == holdings[1]["items"]
    assert holdings[0]["items"][0]["quantity"] == "120"
    assert holdings[0]["items"][0]["cost_basis"] == "6508.50"
    as_json = (
        await client.get(f"{BASE}/{pid}/export", params={"format": "json"}, headers=user.headers)
    ).json()
    assert len(as_json["transactions"]) == 4
    # Zerodha's tradebook and Ghostfolio's export.
    zerodha = (
        "symbol,isin,trade_date,exchange,segment,series,trade_type,auction,quantity,price,"
        "trade_id,order_id,order_execution_time\n"
        "INFY,INE009A01021,2024-05-02,NSE,EQ,EQ,buy,false,10.000000,1450.50,T1,O1,"
        "2024-05-02T10:01:02\n"
    )
    r = await client.post(
        url, params={"format": "zerodha"}, files=upload(zerodha), headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["transactions"][0]["instrument"] == "NSE:INFY"
    ghost: dict[str, list[dict[str, Any]]] = {
        "accounts": [{"id": "g1", "name": "Ghost"}],
        "activities": [
            {
                "accountId": "g1",
                "type": "BUY",
                "symbol": "TCS.NS",
                "quantity": 2,
                "unitPrice": 3500.5,
                "fee": 1,
                "currency": "INR",
                "date": "2024-05-02T22:00:00.000Z",
            },
            {
                "accountId": "g1",
                "type": "ITEM",
                "symbol": "Car",
                "quantity": 1,
                "unitPrice": 1,
                "fee": 0,
                "currency": "INR",
                "date": "2024-05-02T00:00:00.000Z",
            },
        ],
    }
    files = {"file": ("g.json", orjson.dumps(ghost), "application/json")}
    r = await client.post(url, params={"format": "ghostfolio"}, files=files, headers=user.headers)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["line"] == 2
    ghost["activities"].pop()
    files = {"file": ("g.json", orjson.dumps(ghost), "application/json")}
    r = await client.post(url, params={"format": "ghostfolio"}, files=files, headers=user.headers)
    assert r.status_code == 200, r.text
    (tcs,) = r.json()["transactions"]
    assert (tcs["instrument"], tcs["date"], tcs["price"]) == ("NSE:TCS", "2024-05-03", "3500.5")
    # Reports over it all.
    perf = (
        await client.get(
            f"{BASE}/{pid}/performance", params={"period": "max"}, headers=user.headers
        )
    ).json()
    assert {"twr", "xirr", "roai", "modified_dietz"} <= set(perf)
    series = (await client.get(f"{BASE}/{pid}/series", headers=user.headers)).json()
    assert series["dates"][0] == "2024-01-02"
    allocation = (await client.get(f"{BASE}/{pid}/allocation", headers=user.headers)).json()
    assert {s["key"] for s in allocation["account"]} == {"Broker", "Default", "Ghost"}
    for chart in ("chart.svg", "allocation.svg"):
        r = await client.get(f"{BASE}/{pid}/{chart}", headers=user.headers)
        assert r.status_code == 200, r.text
        assert r.text.startswith("<svg")
