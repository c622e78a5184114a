"""Multi-leg orders through the API (docs/trading.md, "Multi-leg"): all legs fill together
at their quotes when the net reaches the limit, or none; refusals name the leg."""

from __future__ import annotations

from tests.trading.conftest import Desk

FUT = "SIM:SIMIDX26DECFUT"
PAIR = [
    {"instrument": "SIM:ALPHA", "side": "buy", "ratio": 1},
    {"instrument": "SIM:BETA", "side": "sell", "ratio": 1},
]


async def test_an_mleg_order_fills_every_leg_at_once_when_the_net_allows(desk: Desk) -> None:
    await desk.quote("SIM:BETA", "99.00", 500, "99.10", 300, "99.05")
    order = await desk.place(
        instrument=None, order_class="mleg", quantity=100, type="limit", limit_price="0.90",
        time_in_force="day", product="mis", legs=PAIR,
    )  # fmt: skip
    buy, sell = order["legs"]
    shape = [(leg["instrument"], leg["side"], leg["quantity"], leg["ratio"]) for leg in (buy, sell)]
    assert shape == [("SIM:ALPHA", "buy", "100", 1), ("SIM:BETA", "sell", "100", 1)]
    # Net 100.05 - 99.00 = 1.05, above the 0.90 debit: it rests, nothing fills.
    assert (await desk.order(order["id"]))["status"] == "new"
    assert await desk.fills() == []
    await desk.quote("SIM:BETA", "99.20", 500, "99.30", 300, "99.25")  # net 0.85
    assert await desk.fills(buy["id"]) == [("100", "100.05")]
    assert await desk.fills(sell["id"]) == [("100", "99.20")]
    got = await desk.order(order["id"])
    assert (got["status"], got["filled_quantity"], got["average_fill_price"]) == (
        "filled", "100", "0.85",
    )  # fmt: skip
    assert [leg["status"] for leg in got["legs"]] == ["filled", "filled"]
    positions = {p["instrument"]: p["quantity"] for p in (await desk.get("/positions"))["items"]}
    assert positions == {"SIM:ALPHA": "100", "SIM:BETA": "-100"}
    assert (await desk.get())["reserved"] == "0"


async def test_mleg_refusals_and_cancels_name_the_leg(desk: Desk) -> None:
    await desk.quote("SIM:SIMIDX26DECFUT", "20000.00", 500, "20000.05", 500, "20000.00")
    problem = await desk.place(
        expect=422, instrument=None, order_class="mleg", quantity=30, type="market",
        product="nrml", legs=[PAIR[0], {"instrument": FUT, "side": "sell", "ratio": 2}],
    )  # fmt: skip
    assert problem["type"].endswith("quantity-not-lot-multiple")
    assert "leg 2 (SIM:SIMIDX26DECFUT): 60" in problem["detail"]
    await desk.quote("SIM:BETA", "99.00", 500, "99.10", 300, "99.05")
    order = await desk.place(
        instrument=None, order_class="mleg", quantity=400, type="market", time_in_force="ioc",
        product="mis", legs=PAIR,
    )  # fmt: skip
    got = await desk.order(order["id"])
    assert got["status"] == "canceled"
    assert "leg 1 (SIM:ALPHA): 300 on offer at 100.05, 400 needed" in got["reason"]
    assert [leg["status"] for leg in got["legs"]] == ["canceled", "canceled"]
    assert await desk.fills() == []
    assert (await desk.get())["reserved"] == "0"
