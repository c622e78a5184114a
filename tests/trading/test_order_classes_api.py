"""Order classes through the API (docs/trading.md, "Order classes"): trailing stops, brackets,
OCO and OTO on SIM:ALPHA scripted by an admin (tick 0.05; bid 99.95x500 / ask 100.05x300,
last 100.00)."""

from __future__ import annotations

from typing import Any

from tests.trading.conftest import Desk

KEY = "SIM:ALPHA"
BRACKET: dict[str, Any] = {
    "side": "buy", "quantity": 100, "type": "limit", "limit_price": "100.00",
    "time_in_force": "gtc", "order_class": "bracket",
    "take_profit": {"limit_price": "101.00"}, "stop_loss": {"stop_price": "99.00"},
}  # fmt: skip


async def kinds(desk: Desk, order_id: str) -> list[str]:
    return [e["kind"] for e in await desk.get(f"/orders/{order_id}/events")]


async def test_a_sell_trailing_stop_follows_the_high_and_fills_at_the_bid(desk: Desk) -> None:
    await desk.place(side="buy", quantity=100, type="market")  # 100 held
    order = await desk.place(
        side="sell", quantity=100, type="trailing_stop", trail_percent="1", time_in_force="gtc"
    )
    got = await desk.order(order["id"])
    assert (got["stop_price"], got["hwm"], got["kite_status"]) == (
        "99.00",
        "100.00",
        "TRIGGER PENDING",
    )
    await desk.quote(KEY, "104.95", 500, "105.05", 300, "105.00")
    got = await desk.order(order["id"])
    assert (got["stop_price"], got["hwm"]) == ("103.95", "105.00")  # 105 x 0.99
    await desk.trade(KEY, "104.00", 10)  # below the high: the stop stays
    assert (await desk.order(order["id"]))["stop_price"] == "103.95"
    await desk.quote(KEY, "103.85", 500, "103.95", 300, "103.90")  # elected at 103.90
    assert await desk.fills(order["id"]) == [("100", "103.85")]  # at the bid
    assert await kinds(desk, order["id"]) == [
        "pending_new", "accepted", "trailed", "trailed", "triggered", "fill",
    ]  # fmt: skip
    problem = await desk.place(
        expect=422, side="sell", quantity=1, type="trailing_stop", product="mis",
        trail_price="1.00", trail_percent="1",
    )  # fmt: skip
    assert problem["type"].endswith("invalid-trailing-stop")


async def test_a_bracket_activates_its_exits_for_what_the_entry_filled(desk: Desk) -> None:
    entry = await desk.place(**BRACKET)
    assert entry["order_class"] == "bracket"
    tp, sl = entry["legs"]
    assert [(o["side"], o["type"], o["status"], o["parent_id"]) for o in (tp, sl)] == [
        ("sell", "limit", "held", entry["id"]),
        ("sell", "stop", "held", entry["id"]),
    ]
    assert tp["kite_status"] == "TRIGGER PENDING"
    assert (await desk.get())["reserved"] == "10000"  # the entry's; the exits reserve nothing
    listed = (await desk.get("/orders?status=open"))["items"]
    assert {o["id"] for o in listed} == {entry["id"], tp["id"], sl["id"]}

    await desk.trade(KEY, "100.00", 40)  # the entry fills 40: the exits work for 40
    assert (await desk.order(entry["id"]))["status"] == "partially_filled"
    assert [(await desk.order(o["id"]))["status"] for o in (tp, sl)] == ["new", "new"]
    await desk.trade(KEY, "101.00", 100)  # the take-profit sells only those 40
    assert await desk.fills(tp["id"]) == [("40", "101.00")]
    assert (await desk.order(sl["id"]))["quantity"] == "60"  # 100 less the sibling's 40
    await desk.trade(KEY, "100.00", 60)  # the rest of the entry
    assert (await desk.order(entry["id"]))["status"] == "filled"
    await desk.quote(KEY, "98.90", 500, "99.00", 300, "98.95")  # elects the stop-loss
    assert await desk.fills(sl["id"]) == [("60", "98.90")]
    got_tp, got_sl = await desk.order(tp["id"]), await desk.order(sl["id"])
    assert (got_sl["status"], got_tp["status"]) == ("filled", "canceled")
    assert got_tp["reason"] == "one-cancels-other: its sibling filled"
    assert await kinds(desk, sl["id"]) == [
        "pending_new", "held", "activated", "resized", "activated", "triggered", "fill",
    ]  # fmt: skip
    account = await desk.get()
    assert (await desk.get("/positions"))["items"][0]["quantity"] == "0"
    assert account["realised_pnl"] == "-26"  # 40 x 1.00 - 60 x 1.10
    assert account["reserved"] == "0"


async def test_canceling_the_parent_cancels_its_children_and_rules_are_checked(
    desk: Desk,
) -> None:
    entry = await desk.place(**BRACKET)
    r = await desk.client.delete(desk.url(f"/orders/{entry['id']}"), headers=desk.trader.headers)
    assert r.status_code == 200, r.text
    assert [leg["status"] for leg in r.json()["legs"]] == ["canceled", "canceled"]
    assert (await desk.get())["reserved"] == "0"
    wrong = dict(BRACKET, stop_loss={"stop_price": "101.50"})  # a buy's stop above its entry
    problem = await desk.place(expect=422, **wrong)
    assert problem["type"].endswith("invalid-order-class")
    await desk.place(expect=422, **dict(BRACKET, take_profit=None))  # needs both
    # OCO: two exits of a held position, both working; a fill of one cancels the other.
    await desk.place(side="buy", quantity=100, type="market")
    oco = await desk.place(
        side="sell", quantity=100, type="limit", time_in_force="gtc", order_class="oco",
        take_profit={"limit_price": "101.00"}, stop_loss={"stop_price": "99.00"},
    )  # fmt: skip
    assert (oco["limit_price"], oco["status"], oco["reserved"]) == ("101.00", "new", "0")
    (stop,) = oco["legs"]
    assert (stop["type"], stop["status"], stop["parent_id"]) == ("stop", "new", oco["id"])
    await desk.trade(KEY, "101.00", 100)
    assert await desk.fills(oco["id"]) == [("100", "101.00")]
    assert (await desk.order(stop["id"]))["status"] == "canceled"
    # OTO: an entry and one exit.
    oto = await desk.place(
        side="buy", quantity=10, type="market", order_class="oto",
        stop_loss={"stop_price": "95.00", "limit_price": "94.90"},
    )  # fmt: skip
    (exit_order,) = (await desk.order(oto["id"]))["legs"]
    assert (exit_order["type"], exit_order["status"]) == ("stop_limit", "new")
