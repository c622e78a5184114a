"""Accounts, cash and the ledger through the API."""

from __future__ import annotations

import httpx

from tests.conftest import UserFactory
from tests.trading.conftest import Desk, new_key


async def test_open_accounts_with_the_default_cash(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    user = await make_user(role="trader")
    inr = await client.post("/api/v1/accounts", json={}, headers=user.headers)
    usd = await client.post("/api/v1/accounts", json={"currency": "USD"}, headers=user.headers)
    assert inr.status_code == usd.status_code == 201
    assert inr.json()["cash"] == "10000000"  # one crore
    assert inr.json()["buying_power"] == "10000000"
    assert inr.json()["equity"] == "10000000"
    assert usd.json()["cash"] == "100000"
    listed = await client.get("/api/v1/accounts", headers=user.headers)
    assert [a["id"] for a in listed.json()["items"]] == [inr.json()["id"], usd.json()["id"]]


async def test_another_users_account_is_a_404(
    client: httpx.AsyncClient, make_user: UserFactory, desk: Desk
) -> None:
    other = await make_user(role="trader")
    for method, path in (("GET", ""), ("GET", "/orders"), ("POST", "/reset")):
        r = await client.request(method, desk.url(path), headers=other.headers)
        assert r.status_code == 404, (method, path, r.text)
    order = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": 1}
    r = await client.post(desk.url("/orders"), json=order, headers=other.headers)
    assert r.status_code == 404


async def test_viewers_cannot_trade(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    viewer = await make_user(role="viewer")
    r = await client.post("/api/v1/accounts", json={}, headers=viewer.headers)
    assert r.status_code == 403


async def test_deposits_are_idempotent_and_withdrawals_need_free_cash(desk: Desk) -> None:
    key = new_key()
    headers = {**desk.trader.headers, "Idempotency-Key": key}
    for _ in range(2):
        r = await desk.client.post(
            desk.url("/deposits"), json={"amount": "2500.50"}, headers=headers
        )
        assert r.status_code == 201, r.text
    assert (await desk.get())["cash"] == "10002500.5"
    r = await desk.client.post(
        desk.url("/withdrawals"), json={"amount": "20000000"}, headers=desk.trader.headers
    )
    assert r.status_code == 422
    assert r.json()["type"].endswith("insufficient-funds")
    assert (await desk.get())["cash"] == "10002500.5"
    entries = (await desk.get("/ledger"))["items"]
    assert [e["kind"] for e in entries] == ["deposit", "deposit"]  # newest first
    for entry in entries:
        assert sum(float(p["amount"]) for p in entry["postings"]) == 0


async def test_a_round_trip_realises_pnl_and_reset_starts_over(desk: Desk) -> None:
    await desk.place(side="buy", quantity=100, type="market")  # 100 @ 100.05
    account = await desk.get()
    assert account["cash"] == "9989995"
    assert account["equity"] == "9999995"  # marked at the last, 100.00
    assert account["unrealised_pnl"] == "-5"
    (position,) = (await desk.get("/positions"))["items"]
    assert position["quantity"] == "100"
    assert position["average_price"] == "100.05"
    await desk.quote("SIM:ALPHA", "101.95", 500, "102.05", 300, "102.00")
    await desk.place(side="sell", quantity=100, type="market")  # 100 @ 101.95
    account = await desk.get()
    assert account["realised_pnl"] == "190"
    assert account["cash"] == "10000190"
    (position,) = (await desk.get("/positions"))["items"]
    assert position["quantity"] == "0"
    assert position["realised_pnl"] == "190"
    r = await desk.client.post(desk.url("/reset"), headers=desk.trader.headers)
    assert r.status_code == 200, r.text
    assert r.json()["cash"] == "10000000"
    assert r.json()["realised_pnl"] == "0"
    assert (await desk.get("/orders"))["items"] == []


async def test_futures_block_margin_not_notional(desk: Desk) -> None:
    key = "SIM:SIMIDX26DECFUT"
    await desk.quote(key, "20000.00", 500, "20000.05", 500, "20000.00")
    await desk.place(instrument=key, side="buy", quantity=50, type="market", product="nrml")
    account = await desk.get()
    # 12% of 50 x 20000.05 = 120000.30 blocked; no premium paid.
    assert account["margin_used"] == "120000.3"
    assert account["cash"] == "9879999.7"
    (position,) = (await desk.get("/positions"))["items"]
    assert position["margin"] == "120000.3"
