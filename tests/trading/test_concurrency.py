"""Fifty clients place, modify and cancel against one account while quotes move: the ledger
balances, no reservation leaks, no order is filled twice (checked by the desk's teardown and
here)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from quantdesk.settings import Settings
from tests.conftest import base_settings
from tests.trading.conftest import Desk

CLIENTS = 50


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    # One user drives all fifty clients: the per-user orders limit is not what is tested.
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={"rate_limit_orders": "100000/second"}
    )


async def test_fifty_clients_on_one_account(desk: Desk) -> None:
    rng = random.Random(11)
    headers = desk.trader.headers
    statuses: Counter[int] = Counter()

    async def client(n: int) -> None:
        price = Decimal("99.00") + Decimal("0.05") * rng.randint(0, 25)
        body = {
            "instrument": "SIM:ALPHA", "side": "buy", "quantity": rng.randint(1, 40) * 5,
            "type": "limit", "limit_price": str(price), "time_in_force": "gtc",
        }  # fmt: skip
        r = await desk.client.post(desk.url("/orders"), json=body, headers=headers)
        statuses[r.status_code] += 1
        if r.status_code != 201:
            return
        order_id = r.json()["id"]
        if n % 3 == 0:
            patch = {"quantity": body["quantity"] + 5}  # type: ignore[operator]
            r = await desk.client.patch(
                desk.url(f"/orders/{order_id}"), json=patch, headers=headers
            )
            statuses[r.status_code] += 1
        if n % 2 == 0:
            r = await desk.client.delete(desk.url(f"/orders/{order_id}"), headers=headers)
            statuses[r.status_code] += 1

    async def market() -> None:
        for step in range(10):
            ask = Decimal("99.50") + Decimal("0.05") * (step % 6)
            await desk.quote("SIM:ALPHA", str(ask - Decimal("0.05")), 500, str(ask), 150, str(ask))

    await asyncio.gather(market(), *(client(n) for n in range(CLIENTS)))
    await desk.settle()
    # Every call answered sensibly: placed, modified, canceled, or refused because the order
    # had filled meanwhile (422 order-not-open): never a 500 or a lost update.
    assert set(statuses) <= {200, 201, 422}, statuses
    assert statuses[201] == CLIENTS
    orders = (await desk.get("/orders?limit=500"))["items"]
    fills = (await desk.get("/fills?limit=500"))["items"]
    assert fills, "the scenario must trade"
    assert any(o["status"] == "canceled" for o in orders)
    assert len({f["execution_id"] for f in fills}) == len(fills)
    filled: Counter[str] = Counter()
    for fill in fills:
        filled[fill["order_id"]] += int(Decimal(fill["quantity"]))
    for order in orders:
        assert Decimal(order["filled_quantity"]) == filled[order["id"]]
        assert Decimal(order["filled_quantity"]) <= Decimal(order["quantity"])
        if order["status"] in ("filled", "canceled"):
            assert order["reserved"] == "0"
    account = await desk.get()
    open_reserved = sum(
        (Decimal(o["reserved"]) for o in orders if o["status"] not in ("filled", "canceled")),
        Decimal(0),
    )
    assert Decimal(account["reserved"]) == open_reserved
