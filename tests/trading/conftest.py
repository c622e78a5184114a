"""A trading desk for the API tests: a trader with an account, an admin who scripts the
SIM market, and the ledger checked after every test (the issue's invariant)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.domain import Exchange, Instrument, InstrumentType
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.platform.context import AppContext
from quantdesk.trading.ledger import verify_all
from tests.conftest import UserFactory
from tests.support.factories import TestUser

TICK = Decimal("0.05")


def sim_instruments() -> list[Instrument]:
    return [
        Instrument(Exchange.SIM, "ALPHA", "Alpha", InstrumentType.EQUITY, "INR", tick_size=TICK),
        Instrument(Exchange.SIM, "BETA", "Beta", InstrumentType.EQUITY, "INR", tick_size=TICK),
        Instrument(
            Exchange.SIM, "SIMIDX26DECFUT", "SIM index future", InstrumentType.FUTURE, "INR",
            lot_size=Decimal(50), tick_size=TICK, underlying="SIMIDX",
            expiry=__import__("datetime").date(2099, 12, 31),
        ),
    ]  # fmt: skip


SETTLE_ROUND_S = 0.005
SETTLE_QUIET_ROUNDS = 3
SETTLE_MAX_ROUNDS = 60  # a running demo ticker never goes quiet


@dataclass
class Desk:
    app: FastAPI
    client: httpx.AsyncClient
    trader: TestUser
    admin: TestUser
    account_id: str

    @property
    def ctx(self) -> AppContext:
        ctx: AppContext = self.app.state.ctx
        return ctx

    def url(self, path: str = "") -> str:
        return f"/api/v1/accounts/{self.account_id}{path}"

    async def quote(
        self, key: str, bid: str, bid_size: int, ask: str, ask_size: int, last: str
    ) -> None:
        body = {
            "key": key, "bid": bid, "bid_size": bid_size, "ask": ask, "ask_size": ask_size,
            "last": last,
        }  # fmt: skip
        r = await self.client.post(
            "/api/v1/admin/demo/quotes", json=body, headers=self.admin.headers
        )
        assert r.status_code == 200, r.text
        await self.settle()

    async def trade(self, key: str, price: str, size: int) -> None:
        body = {"key": key, "price": price, "size": size}
        r = await self.client.post(
            "/api/v1/admin/demo/trades", json=body, headers=self.admin.headers
        )
        assert r.status_code == 200, r.text
        await self.settle()

    async def settle(self) -> None:
        """Let the matcher take in and handle everything published so far (when it runs in
        this app; tests of served processes poll instead): until nothing new has reached it
        from the bus for a few short rounds, each of which lets a message in flight (in the
        process or from Redis) arrive.  Five fixed 20 ms rounds cost the trading tests
        100 ms per step."""
        matcher = self.ctx.extensions.get("trading_matcher")
        if matcher is None:  # another process matches: give it the time it always had
            await asyncio.sleep(0.1)
            return
        quiet = rounds = 0
        while quiet < SETTLE_QUIET_ROUNDS and rounds < SETTLE_MAX_ROUNDS:
            seen = matcher.stats.received
            await asyncio.sleep(SETTLE_ROUND_S)
            await matcher.idle()
            rounds += 1
            quiet = quiet + 1 if matcher.stats.received == seen else 0

    async def place(self, expect: int = 201, **body: Any) -> dict[str, Any]:
        body.setdefault("instrument", "SIM:ALPHA")
        r = await self.client.post(self.url("/orders"), json=body, headers=self.trader.headers)
        assert r.status_code == expect, r.text
        await self.settle()
        return dict(r.json())

    async def order(self, order_id: str) -> dict[str, Any]:
        r = await self.client.get(self.url(f"/orders/{order_id}"), headers=self.trader.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def get(self, path: str = "") -> Any:
        r = await self.client.get(self.url(path), headers=self.trader.headers)
        assert r.status_code == 200, r.text
        return r.json()

    async def fills(self, order_id: str | None = None) -> list[tuple[str, str]]:
        """(quantity, price) of the account's fills, oldest first."""
        items = (await self.get("/fills"))["items"]
        return [
            (f["quantity"], f["price"])
            for f in reversed(items)
            if order_id is None or f["order_id"] == order_id
        ]


DeskFactory = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def sim_market(app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    # A writer, as every writer of the app is: in the write queue, with the lock from BEGIN
    # (a deferred transaction that read first cannot take the lock from the matcher).
    async with ctx.database.session(immediate=True) as db:
        await InstrumentService(db).upsert_many(sim_instruments())


@pytest.fixture
async def desk(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory, sim_market: None
) -> AsyncIterator[Desk]:
    trader = await make_user(role="trader")
    admin = await make_user(role="admin")
    r = await client.post("/api/v1/accounts", json={"name": "desk"}, headers=trader.headers)
    assert r.status_code == 201, r.text
    desk = Desk(app, client, trader, admin, r.json()["id"])
    await desk.quote("SIM:ALPHA", "99.95", 500, "100.05", 300, "100.00")
    yield desk
    await assert_ledgers_balance(desk.ctx)


async def assert_ledgers_balance(ctx: AppContext) -> None:
    async with ctx.database.session() as db:
        problems = await verify_all(db)
    assert problems == {}, problems


def new_key() -> str:
    return f"k-{uuid.uuid4().hex}"
