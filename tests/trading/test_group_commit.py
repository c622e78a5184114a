"""Placements that arrive together are written in one transaction (trading/placement.py)
and decided exactly as the same orders placed one by one: each sees the cash and the open
quantity the ones before it took, a refused order writes nothing and fails no other."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from quantdesk.settings import Settings
from quantdesk.trading.events import MATCHER_CHANNEL
from quantdesk.trading.placement import PLACER, OrderPlacer
from tests.conftest import UserFactory, base_settings
from tests.trading.conftest import Desk

BUY: dict[str, Any] = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": 10, "type": "limit",
       "limit_price": "95.00", "time_in_force": "gtc"}  # fmt: skip


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        # Several writers at once (the default is one), so batches overlap on PostgreSQL.
        update={"rate_limit_orders": "100000/second", "trading_placement_writers": 4}
    )


async def test_concurrent_placements_share_transactions_and_decide_one_by_one(
    desk: Desk, make_user: UserFactory
) -> None:
    r = await desk.client.post(
        "/api/v1/accounts", json={"name": "small", "starting_cash": "10000"},
        headers=desk.trader.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    small = f"/api/v1/accounts/{r.json()['id']}/orders"
    stranger = await make_user(role="trader")
    placer = desk.ctx.extensions[PLACER]
    assert isinstance(placer, OrderPlacer)
    batches_before = placer.batches

    async def place(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        response = await desk.client.post(url, json=body, headers=headers)
        return response.status_code, response.json()

    requests = [place(small, BUY, desk.trader.headers) for _ in range(30)]
    # The same client_order_id twice in the same burst: one order, both answered with it.
    twice = dict(BUY, client_order_id="same-one")
    requests += [place(desk.url("/orders"), twice, desk.trader.headers) for _ in range(2)]
    requests.append(place(small, BUY, stranger.headers))  # another user's account: 404
    requests.append(
        place(desk.url("/orders"), dict(BUY, instrument="SIM:NOPE"), desk.trader.headers)
    )
    requests.append(place(desk.url("/orders"), dict(BUY, instrument="no key"), desk.trader.headers))
    answers = await asyncio.gather(*requests)
    await desk.settle()

    small_answers = answers[:30]
    # 10 x 95 = 950 reserved each: exactly ten of thirty fit 10,000.
    assert Counter(status for status, _ in small_answers) == {201: 10, 422: 20}
    refused = [body for status, body in small_answers if status == 422]
    assert all(p["type"].endswith("insufficient-buying-power") for p in refused)
    (first, a), (second, b) = answers[30:32]
    assert first == second == 201
    assert a["id"] == b["id"]
    assert answers[32][0] == 404, answers[32]
    assert answers[33][0] == 404
    assert "SIM:NOPE" in answers[33][1]["detail"]
    assert answers[34][0] == 422
    # Fewer transactions than placements: they were written together.
    assert placer.batches - batches_before < 30

    small_account = await desk.client.get(
        small.removesuffix("/orders"), headers=desk.trader.headers
    )
    assert small_account.json()["cash"] == "500"
    assert small_account.json()["reserved"] == "9500"
    listed = await desk.client.get(small + "?limit=100", headers=desk.trader.headers)
    assert len(listed.json()["items"]) == 10
    mine = (await desk.get("/orders?limit=100"))["items"]
    assert [o["client_order_id"] for o in mine] == ["same-one"]


async def test_placements_and_refusals_are_counted(desk: Desk) -> None:
    await desk.place(**BUY)
    await desk.place(expect=422, **dict(BUY, limit_price="95.03"))  # off the tick
    metrics = (await desk.client.get("/metrics")).text
    assert "quantdesk_orders_placed_total 1.0" in metrics
    assert 'quantdesk_orders_rejected_total{reason="price-off-tick"} 1.0' in metrics


async def test_a_batch_tells_the_matcher_in_one_message(desk: Desk) -> None:
    """The orders a commit placed reach the matcher as one bus message, a JSON array in the
    order they were placed; a lone object (a process of an earlier release) is taken too."""
    matcher = desk.ctx.extensions["trading_matcher"]
    placer = desk.ctx.extensions[PLACER]
    assert isinstance(placer, OrderPlacer)
    async with desk.ctx.bus.subscribe([MATCHER_CHANNEL]) as subscription:
        batches_before = placer.batches
        answers = await asyncio.gather(
            *(desk.client.post(desk.url("/orders"), json=BUY, headers=desk.trader.headers)
              for _ in range(12))
        )  # fmt: skip
        assert [a.status_code for a in answers] == [201] * 12
        batches = placer.batches - batches_before
        messages = []
        for _ in range(batches):
            received = await subscription.get(5.0)
            assert received is not None
            messages.append(orjson.loads(received[1]))
        assert await subscription.get(0.2) is None  # one message per batch, no more
    assert all(isinstance(m, list) for m in messages)
    told = [item["order_id"] for m in messages for item in m]
    assert sorted(told) == sorted(a.json()["id"] for a in answers)
    assert {item["op"] for m in messages for item in m} == {"new"}
    await desk.settle()
    received_before = matcher.stats.received
    await desk.ctx.bus.publish(MATCHER_CHANNEL, orjson.dumps(messages[0][0]))
    await desk.settle()
    assert matcher.stats.received == received_before + 1
    assert (await desk.order(told[0]))["status"] == "new"  # a repeat changes nothing
