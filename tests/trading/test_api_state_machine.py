"""The trading issue's property test through the public API: a hypothesis state machine
places, modifies and cancels orders of every type while it scripts quotes and trade prints
on SIM, and after every step checks the invariants the service promises (the engine's own
machine, tests/trading/engine/test_engine_properties.py, checks the matching in memory):

* statuses are Alpaca's, and a terminal status never changes;
* an order's filled quantity only grows and never exceeds its quantity; its average fill
  price is the fills' sum(p x q) / sum(q); every fill has its own execution id;
* the account's reserved cash is exactly what its open orders hold, and none is left on a
  closed order;
* the journal balances (every entry sums to zero, the cached balances equal the postings);
* the account's outbox sequence is strictly increasing.

Each example is a new app on a new database (a copy of the migrated template), so the
machine runs on SQLite and on PostgreSQL + Redis as the rest of the suite does.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from quantdesk.app import create_app
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.trading.engine.types import TERMINAL_STATUSES
from quantdesk.trading.models import TradingEvent
from tests.conftest import base_settings
from tests.support.factories import Users
from tests.support.servers import PostgresServer
from tests.trading.conftest import TICK, Desk, assert_ledgers_balance, sim_instruments

STATUSES = {
    "pending_new", "new", "partially_filled", "filled", "canceled", "expired", "rejected",
    "pending_cancel", "pending_replace",
}  # fmt: skip
MID = Decimal(100)


class ApiMachine(RuleBasedStateMachine):
    # Set by the test: a function that gives each example a fresh database URL and var dir.
    fresh_database: ClassVar[Callable[[], tuple[str, Path, str | None]]]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        self.mid = MID
        self.orders: list[str] = []
        self.seen: dict[str, tuple[str, Decimal]] = {}
        self.loop.run_until_complete(self._start())

    async def _start(self) -> None:
        url, var_dir, redis_url = type(self).fresh_database()
        settings = base_settings(url, var_dir, redis_url).model_copy(
            update={"rate_limit_orders": "100000/second"}
        )
        app = create_app(settings)
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.10", 50000))
        client = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://testserver")
        )
        users = Users(app, client)
        trader = await users.logged_in(role="trader")
        admin = await users.logged_in(role="admin")
        async with app.state.ctx.database.session(immediate=True) as db:
            await InstrumentService(db).upsert_many(sim_instruments())
        r = await client.post(
            "/api/v1/accounts", json={"starting_cash": "200000"}, headers=trader.headers
        )
        assert r.status_code == 201, r.text
        self.desk = Desk(app, client, trader, admin, r.json()["id"])
        await self._quote(Decimal(0), 200, 200)

    def teardown(self) -> None:
        self.loop.run_until_complete(self.stack.aclose())
        self.loop.close()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _quote(self, move: Decimal, bid_size: int, ask_size: int) -> None:
        self.mid += move
        bid, ask = self.mid - TICK, self.mid + TICK
        await self.desk.quote("SIM:ALPHA", str(bid), bid_size, str(ask), ask_size, str(self.mid))

    # --- actions ---------------------------------------------------------------------------
    @rule(
        side=st.sampled_from(["buy", "sell"]),
        kind=st.sampled_from(["limit", "market", "stop", "stop_limit"]),
        ticks=st.integers(-6, 6),
        quantity=st.integers(1, 40),
        tif=st.sampled_from(["day", "gtc", "ioc", "fok"]),
    )
    def place(self, side: str, kind: str, ticks: int, quantity: int, tif: str) -> None:
        price = self.mid + TICK * ticks
        body: dict[str, Any] = {
            "instrument": "SIM:ALPHA", "side": side, "type": kind, "quantity": quantity,
            "time_in_force": tif, "product": "mis",
        }  # fmt: skip
        if kind in ("limit", "stop_limit"):
            body["limit_price"] = str(price)
        if kind in ("stop", "stop_limit"):
            # A buy stop above the market, a sell stop below it (else it is refused).
            away = abs(ticks) + 1
            body["stop_price"] = str(self.mid + TICK * (away if side == "buy" else -away))
            if kind == "stop_limit":
                body["limit_price"] = body["stop_price"]
        r = self.run(self.desk.client.post(self.desk.url("/orders"), json=body,
                                           headers=self.desk.trader.headers))  # fmt: skip
        assert r.status_code in (201, 422), r.text
        if r.status_code == 201:
            self.orders.append(r.json()["id"])
        self.run(self.desk.settle())

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data(), grow=st.integers(0, 10))
    def modify(self, data: st.DataObject, grow: int) -> None:
        order_id = data.draw(st.sampled_from(self.orders))
        current = self.run(self.desk.order(order_id))
        patch = {"quantity": str(Decimal(current["quantity"]) + grow)}
        r = self.run(self.desk.client.patch(self.desk.url(f"/orders/{order_id}"), json=patch,
                                            headers=self.desk.trader.headers))  # fmt: skip
        assert r.status_code in (200, 422), r.text
        self.run(self.desk.settle())

    @precondition(lambda self: bool(self.orders))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(self.orders))
        r = self.run(self.desk.client.delete(self.desk.url(f"/orders/{order_id}"),
                                             headers=self.desk.trader.headers))  # fmt: skip
        assert r.status_code in (200, 422), r.text
        self.run(self.desk.settle())

    @rule(
        move=st.integers(-4, 4),
        bid_size=st.integers(1, 60),
        ask_size=st.integers(1, 60),
    )
    def quote(self, move: int, bid_size: int, ask_size: int) -> None:
        self.run(self._quote(TICK * move, bid_size, ask_size))

    @rule(ticks=st.integers(-5, 5), size=st.integers(1, 50))
    def trade(self, ticks: int, size: int) -> None:
        self.run(self.desk.trade("SIM:ALPHA", str(self.mid + TICK * ticks), size))

    # --- what must hold after every step ---------------------------------------------------
    @invariant()
    def the_books_agree(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        desk = self.desk
        orders = (await desk.get("/orders?limit=500"))["items"]
        fills = (await desk.get("/fills?limit=500"))["items"]
        account = await desk.get()
        executions = [f["execution_id"] for f in fills]
        assert len(set(executions)) == len(executions)
        reserved = Decimal(0)
        for order in orders:
            status, filled = order["status"], Decimal(order["filled_quantity"])
            assert status in STATUSES
            before = self.seen.get(order["id"])
            if before is not None:
                assert filled >= before[1]
                if before[0] in TERMINAL_STATUSES:
                    assert status == before[0], (order["id"], before, status)
            self.seen[order["id"]] = (status, filled)
            assert filled <= Decimal(order["quantity"])
            mine = [f for f in fills if f["order_id"] == order["id"]]
            assert sum((Decimal(f["quantity"]) for f in mine), Decimal(0)) == filled
            if mine:
                value = sum((Decimal(f["price"]) * Decimal(f["quantity"]) for f in mine),
                            Decimal(0))  # fmt: skip
                average = Decimal(order["average_fill_price"])
                assert abs(average - value / filled) < Decimal("1e-8")
            if status in TERMINAL_STATUSES:
                assert Decimal(order["reserved"]) == 0, order
            reserved += Decimal(order["reserved"])
        assert Decimal(account["reserved"]) == reserved
        await assert_ledgers_balance(desk.ctx)
        async with desk.ctx.database.session() as db:
            seqs = list(
                await db.scalars(
                    select(TradingEvent.seq)
                    .where(TradingEvent.account_id == uuid.UUID(desk.account_id))
                    .order_by(TradingEvent.id)
                )
            )
        assert all(a < b for a, b in itertools.pairwise(seqs))


@pytest.mark.db
def test_the_api_keeps_every_invariant(
    template_database: str,
    pg_server: PostgresServer | None,
    redis_url: str | None,
    tmp_path: Path,
) -> None:
    made: list[str] = []

    def fresh_database() -> tuple[str, Path, str | None]:
        root = tmp_path / f"example-{len(made)}"
        root.mkdir()
        if pg_server is not None:
            name = f"sm_{uuid.uuid4().hex[:12]}"
            pg_server.psql(f"CREATE DATABASE {name} TEMPLATE qd_template")
            made.append(name)
            return pg_server.url(name), root / "var", redis_url
        source = Path(template_database.removeprefix("sqlite+aiosqlite:///"))
        shutil.copyfile(source, root / "quantdesk.db")
        made.append(str(root))
        return f"sqlite+aiosqlite:///{root / 'quantdesk.db'}", root / "var", None

    ApiMachine.fresh_database = staticmethod(fresh_database)
    try:
        run_state_machine_as_test(
            ApiMachine,
            settings=hypothesis_settings(max_examples=6, stateful_step_count=18, deadline=None),
        )
    finally:
        if pg_server is not None:
            for name in made:
                pg_server.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
