"""Defects found by review, each a scenario that failed before its fix."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select, update

from quantdesk.platform.db import utcnow
from quantdesk.trading.lifecycle import last_closed_session
from quantdesk.trading.matcher import Matcher
from quantdesk.trading.models import PositionRow
from tests.trading.conftest import Desk

KEY = "SIM:ALPHA"
FUT = "SIM:SIMIDX26DECFUT"


async def small_account(desk: Desk, cash: str) -> None:
    r = await desk.client.post(
        "/api/v1/accounts", json={"starting_cash": cash}, headers=desk.trader.headers
    )
    assert r.status_code == 201, r.text
    desk.account_id = r.json()["id"]


async def test_day_pnl_counts_todays_closing_fills_once(desk: Desk) -> None:
    await desk.place(side="buy", quantity=100, type="market", product="mis")  # 100 @ 100.05
    await desk.quote(KEY, "100.95", 500, "101.05", 300, "101.00")
    await desk.place(side="sell", quantity=50, type="market", product="mis")  # 50 @ 100.95
    # 50 x (101.00 - 100.05) still held + 50 x (100.95 - 100.05) sold = 47.5 + 45
    assert (await desk.get())["day_pnl"] == "92.5"
    assert (await desk.get("/positions"))["items"][0]["day_pnl"] == "92.5"


async def test_modifying_a_delivery_sell_cannot_sell_short(desk: Desk) -> None:
    await desk.place(side="buy", quantity=100, type="market")  # cnc: 100 held
    order = await desk.place(side="sell", quantity=100, type="limit", limit_price="101.00")
    r = await desk.client.patch(
        desk.url(f"/orders/{order['id']}"), json={"quantity": 1000}, headers=desk.trader.headers
    )
    assert r.status_code == 422
    assert "held" in r.json()["detail"]
    assert (await desk.order(order["id"]))["quantity"] == "100"


async def test_a_stop_limit_with_its_limit_on_the_wrong_side_is_refused(desk: Desk) -> None:
    problem = await desk.place(
        expect=422, side="buy", quantity=10, type="stop_limit", stop_price="101.00",
        limit_price="100.50",
    )  # fmt: skip
    assert problem["type"].endswith("invalid-order-prices")


async def test_short_proceeds_are_not_buying_power_and_the_cover_is_paid(desk: Desk) -> None:
    await small_account(desk, "10000")
    await desk.place(side="sell", quantity=100, type="market", product="mis")  # 100 @ 99.95
    account = await desk.get()
    assert account["cash"] == "8001"  # 20% margin (1999) blocked, proceeds (9995) blocked
    assert account["margin_used"] == "11994"
    await desk.place(expect=422, side="buy", quantity=160, type="market")  # no such cash
    cover = await desk.place(side="buy", quantity=100, type="market", product="mis")
    assert (await desk.order(cover["id"]))["status"] == "filled"  # 100 @ 100.05
    account = await desk.get()
    assert account["cash"] == "9990"
    assert account["margin_used"] == "0"
    assert account["realised_pnl"] == "-10"


async def test_one_position_is_closed_once_by_open_orders(desk: Desk) -> None:
    await desk.place(side="buy", quantity=100, type="market", product="mis")
    first = await desk.place(
        side="sell", quantity=100, type="limit", limit_price="101.00", product="mis"
    )
    second = await desk.place(
        side="sell", quantity=100, type="limit", limit_price="101.00", product="mis"
    )
    assert first["reserved"] == "0"  # closes the long
    assert second["reserved"] == "2020"  # opens a short: 20% of 100 x 101.00


async def test_futures_settle_after_their_session_and_a_deep_loss_does_not_stop_others(
    desk: Desk,
) -> None:
    await small_account(desk, "700")
    await desk.quote(FUT, "99.95", 500, "100.05", 300, "100.00")
    await desk.place(side="buy", quantity=50, type="market", product="nrml", instrument=FUT)
    matcher: Matcher = desk.ctx.extensions["trading_matcher"]
    async with desk.ctx.database.session() as db:
        (position,) = (await db.execute(select(PositionRow))).scalars()
    # Opened this session: settled from this session's close on, not mid-session.
    assert position.settled_on == last_closed_session("SIM", utcnow())
    await desk.quote(FUT, "100.95", 500, "101.05", 300, "101.00")
    await matcher._settle_futures(utcnow())
    assert (await desk.get())["realised_pnl"] == "0"
    # A gap that costs more than cash and margin: left unsettled, no exception escapes.
    await desk.quote(FUT, "84.95", 500, "85.05", 300, "85.00")
    async with desk.ctx.database.session() as db:
        await db.execute(update(PositionRow).values(settled_on=dt.date(2000, 1, 1)))
    await matcher._settle_futures(utcnow())
    assert Decimal((await desk.get())["cash"]) >= 0
