"""Placing, checking, modifying and cancelling orders through the API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.trading.conftest import Desk


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        ({"type": "limit", "limit_price": "100.03", "quantity": 1}, "price-off-tick"),
        ({"type": "limit", "limit_price": "150.00", "quantity": 1}, "price-outside-band"),
        ({"type": "limit", "limit_price": "100.00", "quantity": 600000}, "order-value-too-large"),
        (
            {"type": "limit", "limit_price": "100.00", "quantity": 200000},
            "insufficient-buying-power",
        ),
        (
            {"instrument": "SIM:SIMIDX26DECFUT", "quantity": 30, "product": "nrml"},
            "quantity-not-lot-multiple",
        ),
    ],
)
async def test_pre_trade_checks_refuse_with_a_stable_type(
    desk: Desk, body: dict[str, Any], slug: str
) -> None:
    await desk.quote("SIM:SIMIDX26DECFUT", "20000.00", 500, "20000.05", 500, "20000.00")
    problem = await desk.place(expect=422, side="buy", **body)
    assert problem["type"].endswith(slug), problem
    assert (await desk.get("/orders"))["items"] == []
    assert (await desk.get())["reserved"] == "0"


async def test_bad_shapes_are_422_and_unknown_instruments_404(desk: Desk) -> None:
    await desk.place(expect=422, side="buy", quantity=1, type="limit")  # no limit_price
    await desk.place(expect=422, side="hold", quantity=1)
    await desk.place(expect=422, side="buy", quantity="-1")
    await desk.place(expect=404, side="buy", quantity=1, instrument="SIM:NOPE")


async def test_delivery_sells_need_holdings(desk: Desk) -> None:
    problem = await desk.place(expect=422, side="sell", quantity=10, product="cnc")
    assert "held" in problem["detail"]
    await desk.place(side="sell", quantity=10, product="mis")  # intraday short: allowed
    (position,) = (await desk.get("/positions"))["items"]
    assert position["quantity"] == "-10"


async def test_client_order_id_gives_the_same_order_back(desk: Desk) -> None:
    body: dict[str, Any] = {"side": "buy", "quantity": 5, "type": "limit", "limit_price": "99.00"}
    first = await desk.place(client_order_id="mine-1", **body)
    again = await desk.place(expect=201, client_order_id="mine-1", **body)
    assert again["id"] == first["id"]
    changed = {**body, "quantity": 6}
    await desk.place(expect=422, client_order_id="mine-1", **changed)
    assert len((await desk.get("/orders"))["items"]) == 1


async def test_cancel_releases_the_reservation_and_a_filled_order_cannot_be_canceled(
    desk: Desk,
) -> None:
    resting = await desk.place(side="buy", quantity=10, type="limit", limit_price="99.00")
    assert (await desk.get())["reserved"] == "990"
    r = await desk.client.delete(desk.url(f"/orders/{resting['id']}"), headers=desk.trader.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled"
    assert (await desk.get())["reserved"] == "0"
    filled = await desk.place(side="buy", quantity=10, type="market")
    r = await desk.client.delete(desk.url(f"/orders/{filled['id']}"), headers=desk.trader.headers)
    assert r.status_code == 422
    assert r.json()["type"].endswith("order-not-open")


async def test_modify_re_reserves_and_can_make_an_order_marketable(desk: Desk) -> None:
    order = await desk.place(side="buy", quantity=10, type="limit", limit_price="99.00")
    r = await desk.client.patch(
        desk.url(f"/orders/{order['id']}"),
        json={"quantity": 20, "limit_price": "100.05"},
        headers=desk.trader.headers,
    )
    assert r.status_code == 200, r.text
    await desk.settle()
    assert await desk.fills(order["id"]) == [("20", "100.05")]
    kinds = [e["kind"] for e in await desk.get(f"/orders/{order['id']}/events")]
    assert kinds == ["pending_new", "accepted", "pending_replace", "replaced", "fill"]
    seqs = [e["seq"] for e in await desk.get(f"/orders/{order['id']}/events")]
    assert seqs == sorted(set(seqs))


async def test_cancel_all_and_filters(desk: Desk) -> None:
    for price in ("98.00", "98.50"):
        await desk.place(side="buy", quantity=1, type="limit", limit_price=price)
    await desk.place(side="buy", quantity=1, type="market")
    assert len((await desk.get("/orders?status=open"))["items"]) == 2
    assert len((await desk.get("/orders?status=filled"))["items"]) == 1
    r = await desk.client.delete(desk.url("/orders"), headers=desk.trader.headers)
    assert r.status_code == 200, r.text
    assert len(r.json()["canceled"]) == 2
    assert (await desk.get("/orders?status=open"))["items"] == []
