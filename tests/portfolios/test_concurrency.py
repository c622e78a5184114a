"""Concurrent clients on one portfolio (SQLite and PostgreSQL): sells racing for the same
shares never oversell, concurrent buys all land, racing edits of one version give one 200
and 409s, never a lost update."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.conftest import UserFactory
from tests.portfolios.test_portfolios_api import BASE, create

CLIENTS = 16


async def test_racing_sells_buys_and_edits(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user()
    pid = (await create(client, user))["id"]
    url = f"{BASE}/{pid}/transactions"
    r = await client.post(
        url,
        headers=user.headers,
        json={
            "type": "buy",
            "instrument": "NSE:ACME",
            "date": "2024-01-02",
            "quantity": "100",
            "price": "10",
        },
    )
    assert r.status_code == 201, r.text
    buy = r.json()

    async def sell(n: int) -> int:
        body = {
            "type": "sell",
            "instrument": "NSE:ACME",
            "date": "2024-02-01",
            "quantity": "15",
            "price": str(11 + n),
        }
        return (await client.post(url, json=body, headers=user.headers)).status_code

    async def add(n: int) -> int:
        body = {
            "type": "buy",
            "instrument": "NSE:BETA",
            "date": "2024-02-01",
            "quantity": str(n + 1),
            "price": "5",
        }
        return (await client.post(url, json=body, headers=user.headers)).status_code

    results = await asyncio.gather(
        *(sell(n) for n in range(CLIENTS)), *(add(n) for n in range(CLIENTS))
    )
    sells, buys = Counter(results[:CLIENTS]), Counter(results[CLIENTS:])
    # 100 shares make six sales of 15; every other is refused, none oversells.
    assert sells == {201: 6, 422: CLIENTS - 6}, sells
    assert buys == {201: CLIENTS}, buys
    holdings = (await client.get(f"{BASE}/{pid}/holdings", headers=user.headers)).json()
    quantities = {h["instrument"]: h["quantity"] for h in holdings["items"]}
    assert quantities == {"NSE:ACME": "10", "NSE:BETA": str(CLIENTS * (CLIENTS + 1) // 2)}

    async def edit(n: int) -> int:
        body = {"version": buy["version"], "note": f"edit {n}"}
        r = await client.patch(f"{url}/{buy['id']}", json=body, headers=user.headers)
        return r.status_code

    edits = Counter(await asyncio.gather(*(edit(n) for n in range(CLIENTS))))
    assert edits == {200: 1, 409: CLIENTS - 1}, edits
    stored = (await client.get(f"{url}/{buy['id']}", headers=user.headers)).json()
    assert stored["version"] == buy["version"] + 1
    seqs = [
        t["id"]
        for t in (await client.get(url, params={"limit": 500}, headers=user.headers)).json()[
            "items"
        ]
    ]
    assert len(seqs) == len(set(seqs)) == 1 + 6 + CLIENTS
