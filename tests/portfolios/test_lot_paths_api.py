"""Specific lots, transfers between accounts, shorts and option expiry through the API."""

from __future__ import annotations

import httpx

from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create, post_all


async def test_specific_lots_transfers_shorts_and_expiry(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    portfolio = await create(client, user)
    pid, first = portfolio["id"], portfolio["accounts"][0]["id"]
    r = await client.post(
        f"{BASE}/{pid}/accounts",
        json={"name": "Demat", "kind": "demat", "lot_method": "lifo"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    second = r.json()["id"]
    assert r.json()["method"] == "lifo"
    a, b = await post_all(
        client,
        user,
        pid,
        [
            {
                "type": "buy",
                "instrument": "NSE:ACME",
                "date": "2024-01-02",
                "quantity": "10",
                "price": "100",
            },
            {
                "type": "buy",
                "instrument": "NSE:ACME",
                "date": "2024-02-01",
                "quantity": "10",
                "price": "120",
            },
        ],
    )
    await post_all(
        client,
        user,
        pid,
        [
            # The second lot, chosen: 10 x (130 - 120).
            {
                "type": "sell",
                "instrument": "NSE:ACME",
                "date": "2024-03-01",
                "quantity": "5",
                "price": "130",
                "lots": [{"lot_id": b["id"], "quantity": "5"}],
            },
            # The rest of the first lot moves to the other account, its cost and date kept.
            {
                "type": "transfer_out",
                "instrument": "NSE:ACME",
                "date": "2024-03-02",
                "quantity": "10",
                "to_account_id": second,
                "lots": [{"lot_id": a["id"], "quantity": "10"}],
            },
            {
                "type": "short_sell",
                "instrument": "NSE:SHRT",
                "date": "2024-03-03",
                "quantity": "4",
                "price": "50",
            },
            {
                "type": "buy_to_cover",
                "instrument": "NSE:SHRT",
                "date": "2024-03-04",
                "quantity": "4",
                "price": "45",
            },
            {
                "type": "buy",
                "instrument": "NSE:ACME24MAR100CE",
                "date": "2024-03-05",
                "quantity": "2",
                "price": "3",
            },
            {"type": "option_expiry", "instrument": "NSE:ACME24MAR100CE", "date": "2024-03-28"},
        ],
    )
    holdings = (
        await client.get(
            f"{BASE}/{pid}/holdings",
            params={"lots": "true", "date": "2024-04-01"},
            headers=user.headers,
        )
    ).json()
    (acme,) = holdings["items"]
    assert (acme["quantity"], acme["cost_basis"]) == ("15", "1600.00")
    lots = {(lot["account_id"], lot["lot_id"]): lot for lot in acme["lots"]}
    assert lots[(second, a["id"])]["opened"] == "2024-01-02"
    assert lots[(first, b["id"])]["quantity"] == "5"
    gains = (await client.get(f"{BASE}/{pid}/gains", headers=user.headers)).json()
    realised = {s["type"]: s["realized_pnl"] for s in gains["sales"]}
    assert realised == {"sell": "50.00", "buy_to_cover": "20.00", "option_expiry": "-6.00"}
    assert gains["realized_pnl"] == "64.00"
    assert gains["by_financial_year"] == [
        {
            "financial_year": "FY2023-24",
            "short_term": "64.00",
            "long_term": "0.00",
            "total": "64.00",
        }
    ]
    r = await client.get(
        f"{BASE}/{pid}/transactions", params={"type": "sell"}, headers=user.headers
    )
    assert r.json()["items"][0]["lots"] == [{"lot_id": b["id"], "quantity": "5"}]
