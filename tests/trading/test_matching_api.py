"""The nine matching cases of docs/trading.md through the public API, on SIM:ALPHA scripted
by an admin: tick 0.05, bid 99.95x500 / ask 100.05x300, last 100.00, no slippage."""

from __future__ import annotations

from tests.trading.conftest import Desk

KEY = "SIM:ALPHA"


async def test_1_market_buy_fills_at_the_ask(desk: Desk) -> None:
    order = await desk.place(side="buy", quantity=200, type="market")
    got = await desk.order(order["id"])
    assert got["status"] == "filled"
    assert got["kite_status"] == "COMPLETE"
    assert got["filled_quantity"] == "200"
    assert got["average_fill_price"] == "100.05"
    fills = (await desk.get("/fills"))["items"]
    assert [(f["order_id"], f["quantity"], f["price"]) for f in fills] == [
        (order["id"], "200", "100.05")
    ]
    assert fills[0]["execution_id"]


async def test_2_market_buy_beyond_the_offer_fills_one_tick_worse(desk: Desk) -> None:
    order = await desk.place(side="buy", quantity=500, type="market")
    assert await desk.fills(order["id"]) == [("300", "100.05"), ("200", "100.10")]
    got = await desk.order(order["id"])
    assert got["average_fill_price"] == "100.07"  # (300x100.05 + 200x100.10) / 500


async def test_3_marketable_limit_takes_the_better_price(desk: Desk) -> None:
    order = await desk.place(side="buy", quantity=200, type="limit", limit_price="100.10")
    assert await desk.fills(order["id"]) == [("200", "100.05")]


async def test_4_resting_limit_fills_at_its_limit(desk: Desk) -> None:
    order = await desk.place(side="buy", quantity=1000, type="limit", limit_price="100.00")
    assert (await desk.order(order["id"]))["status"] == "new"
    await desk.quote(KEY, "99.90", 500, "99.95", 300, "99.95")
    assert await desk.fills(order["id"]) == [("300", "100.00")]
    got = await desk.order(order["id"])
    assert got["status"] == "partially_filled"
    assert got["remaining_quantity"] == "700"


async def test_5_resting_sell_limit_fills_on_a_trade_print(desk: Desk) -> None:
    await desk.place(side="buy", quantity=100, type="market")  # something to sell
    order = await desk.place(side="sell", quantity=100, type="limit", limit_price="101.00")
    await desk.trade(KEY, "101.00", 40)
    assert await desk.fills(order["id"]) == [("40", "101.00")]
    assert (await desk.order(order["id"]))["remaining_quantity"] == "60"


async def test_6_a_gap_through_a_sell_stop_fills_at_the_market(desk: Desk) -> None:
    await desk.place(side="buy", quantity=100, type="market")
    order = await desk.place(side="sell", quantity=100, type="stop", stop_price="98.00")
    assert (await desk.order(order["id"]))["kite_status"] == "TRIGGER PENDING"
    await desk.quote(KEY, "97.00", 500, "97.10", 300, "97.05")  # last 97.05: elected
    assert await desk.fills(order["id"]) == [("100", "97.00")]
    kinds = [e["kind"] for e in await desk.get(f"/orders/{order['id']}/events")]
    assert kinds == ["pending_new", "accepted", "triggered", "fill"]


async def test_7_stop_limit_triggered_rests_then_fills_at_its_limit(desk: Desk) -> None:
    order = await desk.place(
        side="buy", quantity=100, type="stop_limit", stop_price="101.00", limit_price="101.20"
    )
    await desk.quote(KEY, "100.80", 500, "101.50", 300, "100.90")
    await desk.trade(KEY, "101.05", 10)  # elects the stop (last price); the ask is 101.50
    got = await desk.order(order["id"])
    assert got["triggered"] is True
    assert got["status"] == "new"
    assert await desk.fills(order["id"]) == []
    await desk.quote(KEY, "101.10", 500, "101.15", 300, "101.15")
    assert await desk.fills(order["id"]) == [("100", "101.20")]


async def test_8_ioc_fills_what_it_can(desk: Desk) -> None:
    order = await desk.place(
        side="buy", quantity=500, type="limit", limit_price="100.05", time_in_force="ioc"
    )
    assert await desk.fills(order["id"]) == [("300", "100.05")]
    got = await desk.order(order["id"])
    assert got["status"] == "canceled"
    assert got["filled_quantity"] == "300"
    assert got["reserved"] == "0"


async def test_9_fok_fills_all_or_nothing(desk: Desk) -> None:
    order = await desk.place(
        side="buy", quantity=500, type="limit", limit_price="100.05", time_in_force="fok"
    )
    assert await desk.fills(order["id"]) == []
    assert (await desk.order(order["id"]))["status"] == "canceled"
