"""Ticks (modes, the snapshot on subscribe) and a client that reads too slowly: its ticks are
conflated to the latest per instrument while its order events stay whole and in order, and
once more than ``stream_max_pending`` private events wait it is closed with 4008 and
resumes from its cursor, missing nothing and getting nothing twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.context import AppContext
from quantdesk.settings import Settings
from quantdesk.stream import outbox
from tests.conftest import base_settings
from tests.stream.conftest import (
    FAST,
    Desk,
    Served,
    conflated,
    open_stream,
    private_events,
    slow_client,
)

KEYS = [f"SIM:T{n}" for n in range(5)]


@pytest.fixture
def settings(database_url: str, redis_url: str | None, tmp_path: Path) -> Settings:
    return base_settings(database_url, tmp_path / "var", redis_url).model_copy(
        update={**FAST, "stream_max_pending": 10, "stream_heartbeat_s": 30.0}
    )


def _quote(key: str, last: Decimal) -> Quote:
    return Quote(
        key=key,
        last=last,
        ts=dt.datetime.now(dt.UTC),
        bid=last - Decimal("0.05"),
        ask=last + Decimal("0.05"),
        bid_size=Decimal(10),
        ask_size=Decimal(20),
        volume=Decimal(1000),
        oi=Decimal(77),
    )


async def test_tick_modes_and_snapshot(served_either_way: Served, desk: Desk) -> None:
    served = served_either_way
    quotes = QuoteService(desk.ctx.cache, desk.ctx.bus)
    await quotes.publish_one(_quote(KEYS[0], Decimal("101.25")))
    client = await open_stream(served.url, desk.client, desk.trader)
    await client.op(op="subscribe", id="l", channel="ticks", mode="ltp", instruments=[KEYS[0]])
    snapshot = await client.until(lambda f: f["type"] == "tick")
    assert snapshot == {
        "type": "tick",
        "instrument": KEYS[0],
        "mode": "ltp",
        "snapshot": True,
        "last": "101.25",
        "ts": snapshot["ts"],
    }
    await client.op(op="subscribe", id="f", channel="ticks", mode="full", instruments=[KEYS[1]])
    await quotes.publish_one(_quote(KEYS[1], Decimal("99.5")))
    full = await client.until(lambda f: f["type"] == "tick" and f["instrument"] == KEYS[1])
    assert "snapshot" not in full
    assert (full["mode"], full["last"], full["bid"], full["ask"], full["oi"]) == (
        "full", "99.5", "99.45", "99.55", "77",
    )  # fmt: skip
    quote_mode = await open_stream(served.url, desk.client, desk.trader)
    await quote_mode.op(op="subscribe", id="q", channel="ticks", instruments=[KEYS[1]])
    snap = await quote_mode.until(lambda f: f["type"] == "tick")
    assert snap["mode"] == "quote"
    assert "oi" not in snap
    assert (snap["bid_size"], snap["ask_size"], snap["volume"]) == ("10", "20", "1000")
    await client.close()
    await quote_mode.close()


async def _flood(ctx: AppContext) -> dict[str, str]:
    """Quotes of every instrument until the server has had to conflate a thousand: the loop
    yields after every round, so the sender could keep up unless its socket is full (the
    client does not read).  Returns the last prices."""
    quotes = QuoteService(ctx.cache, ctx.bus)
    last: dict[str, str] = {}
    before = conflated(ctx)
    for n in range(20_000):
        batch = [_quote(key, Decimal(100) + Decimal(n) / 100) for key in KEYS]
        await quotes.publish(batch)
        last = {q.key: str(q.last) for q in batch}
        await asyncio.sleep(0)
        if conflated(ctx) - before > 1000:
            break
    return last


def _backlog(ctx: AppContext) -> tuple[float, float]:
    """Fan-out passes so far, and the quotes they carried."""
    registry = ctx.metrics.registry
    return (
        registry.get_sample_value("quantdesk_stream_tick_backlog_count") or 0,
        registry.get_sample_value("quantdesk_stream_tick_backlog_sum") or 0,
    )


def _ticks_sent(ctx: AppContext) -> float:
    labels = {"kind": "tick"}
    return (
        ctx.metrics.registry.get_sample_value("quantdesk_stream_messages_sent_total", labels) or 0
    )


async def _until_blocked(ctx: AppContext) -> None:
    """Until the server has sent no tick for 0.3 s although it has some waiting."""
    for _ in range(20):
        before = _ticks_sent(ctx)
        await asyncio.sleep(0.3)
        if _ticks_sent(ctx) == before:
            return
        await _flood(ctx)
    pytest.fail("the server's socket to the client never filled up")


async def _until_disconnected(ctx: AppContext) -> None:
    labels = {"reason": "slow_consumer"}
    for _ in range(200):
        if ctx.metrics.registry.get_sample_value("quantdesk_stream_disconnects_total", labels):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the slow client was never disconnected")


async def _place(desk: Desk) -> dict[str, Any]:
    return await desk.place(
        side="buy", quantity=1, type="limit", limit_price="90.00", time_in_force="gtc"
    )


async def test_quotes_that_arrive_together_go_out_together_in_order(
    served_either_way: Served, desk: Desk
) -> None:
    """Quotes the bus delivers while a fan-out runs are sent in the next pass, each client
    getting those it follows in one write, in the order published, each in its own mode."""
    ctx = desk.ctx
    quotes = QuoteService(ctx.cache, ctx.bus)
    wide = await open_stream(served_either_way.url, desk.client, desk.trader)
    await wide.op(op="subscribe", id="w", channel="ticks", mode="quote", instruments=KEYS[:3])
    narrow = await open_stream(served_either_way.url, desk.client, desk.trader)
    await narrow.op(op="subscribe", id="n", channel="ticks", mode="ltp", instruments=[KEYS[1]])
    before = _backlog(ctx)
    # One publish of three quotes: the bus hands them over together.
    await quotes.publish([_quote(key, Decimal(100 + n)) for n, key in enumerate(KEYS[:3])])
    got = [await wide.until(lambda f: f["type"] == "tick") for _ in range(3)]
    assert [(f["instrument"], f["last"], f["mode"]) for f in got] == [
        (KEYS[0], "100", "quote"), (KEYS[1], "101", "quote"), (KEYS[2], "102", "quote"),
    ]  # fmt: skip
    tick = await narrow.until(lambda f: f["type"] == "tick")
    assert (tick["instrument"], tick["last"], tick["mode"]) == (KEYS[1], "101", "ltp")
    passes, quotes_sent = _backlog(ctx)
    assert (passes - before[0], quotes_sent - before[1]) == (1, 3)  # one pass carried all three
    await wide.close()
    await narrow.close()


async def test_slow_client_conflated_then_closed_4008_and_resumes(
    served_either_way: Served, desk: Desk
) -> None:
    served = served_either_way
    metrics = desk.ctx.metrics.registry
    client = await slow_client(served, desk)
    await client.op(op="subscribe", id="t", channel="ticks", mode="full", instruments=KEYS)
    await client.op(op="subscribe", id="o", channel="orders", account_id=desk.account_id)
    # 1. The client stops reading while ticks pour in and an order is placed.
    last = await _flood(desk.ctx)
    order = await _place(desk)
    await asyncio.sleep(0.3)
    ticks: dict[str, str] = {}
    while True:
        frame = await client.recv()
        if frame["type"] == "tick":
            ticks[frame["instrument"]] = frame["last"]
        if (
            ticks == last
            and private_events(client.frames, "order_update")[-1:]
            and (client.frames[-1]["type"] == "tick" or frame.get("event") == "new")
        ):
            break
    assert conflated(desk.ctx) > 1000  # conflated...
    assert ticks == last  # ...to each instrument's latest
    updates = private_events(client.frames, "order_update")
    assert [(u["event"], u["order"]["id"]) for u in updates] == [
        ("pending_new", order["id"]),
        ("new", order["id"]),
    ]

    # 2. It stops reading again; more private events wait than it may have (10): 4008.
    await _flood(desk.ctx)
    await _until_blocked(desk.ctx)
    body = {"instrument": "SIM:ALPHA", "side": "buy", "quantity": 1, "type": "limit"}
    placed = await asyncio.gather(
        *(
            desk.client.post(
                desk.url("/orders"),
                json={**body, "limit_price": "90.00", "time_in_force": "gtc"},
                headers=desk.trader.headers,
            )
            for _ in range(6)
        )
    )
    assert [r.status_code for r in placed] == [201] * 6
    # The events reach the connection through the outbox tail, after the commits: the client
    # must not read before they have piled up (once it reads, it is no longer behind; on
    # PostgreSQL the tail took long enough that reading here caught up and nothing closed).
    await _until_disconnected(desk.ctx)
    assert await client.closed(within_s=10) == 4008
    assert [f["code"] for f in client.frames if f["type"] == "error"] == ["slow_client"]
    assert (
        metrics.get_sample_value("quantdesk_stream_disconnects_total", {"reason": "slow_consumer"})
        == 1
    )
    seen = [f["seq"] for f in private_events(client.frames)]

    # 3. It resumes from the last sequence number it saw: the rest, once each, in order.
    again = await open_stream(served.url, desk.client, desk.trader)
    cursor = {"channel": "orders", "account_id": desk.account_id, "from_seq": seen[-1] + 1}
    await again.op(op="resume", id="r", cursors=[cursor])
    async with desk.ctx.database.session() as db:
        stored = await outbox.events_of_account(
            db, uuid.UUID(desk.account_id), from_seq=1, types=["order_update"]
        )
    expected = [e.seq for e in stored]
    await again.until(lambda f: f.get("seq") == expected[-1], within_s=10)
    resumed = [f["seq"] for f in private_events(again.frames)]
    assert seen + resumed == expected
    assert len(expected) == 2 + 6 * 2
    await again.close()
