"""Kite's ticker in the whole app: a stream client's subscription reaches the ticker (and
its unsubscription removes it), and a Kite tick fills a resting paper limit order."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import time_machine
from fastapi import FastAPI

from quantdesk.marketdata.providers.kite.service import (
    KITE_FEED,
    KiteFeed,
    KiteInstrumentsDaily,
)
from quantdesk.marketdata.quotes.service import QuoteService
from tests.conftest import UserFactory
from tests.marketdata.providers.kite.fake_kite import (
    TickerFake,
    eventually,
    frame,
    full_packet,
    ltp_packet,
)
from tests.stream.conftest import Served, open_stream
from tests.trading.conftest import Desk, desk, sim_market  # noqa: F401 - fixtures

RELIANCE, FUT = 738561, 13368834
EMPTY = [(0, 0, 0)] * 4


async def _imported(app: FastAPI) -> KiteFeed:
    """The app's feed after the morning import, looking for new wants every 50 ms."""
    feed = app.state.ctx.extensions[KITE_FEED]
    assert isinstance(feed, KiteFeed)
    daily = KiteInstrumentsDaily(app.state.ctx)
    daily.on_imported.append(feed.reload_tokens)
    assert await daily.import_instruments() == "imported"
    # The production round is 5 s; the loop itself is what is under test, so restart it
    # with a short one instead of calling refresh_subscriptions by hand.
    await feed.stop()
    feed.refresh_s = 0.05
    feed.start()
    return feed


async def test_stream_subscriptions_drive_the_ticker(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory, ticker_fake: TickerFake
) -> None:
    await _imported(app)
    await eventually(lambda: set(ticker_fake.subscribed) == {RELIANCE})  # the watch list
    served = Served(app)
    await served.start()
    stream = await open_stream(served.url, client, await make_user("viewer"))
    try:
        ack = await stream.op(
            op="subscribe", id="s", channel="ticks", mode="ltp", instruments=["NFO:NIFTY26DECFUT"]
        )
        assert ack["type"] == "ack", ack
        await eventually(lambda: FUT in ticker_fake.subscribed)
        assert {"a": "subscribe", "v": [FUT]} in ticker_fake.messages
        await ticker_fake.send(frame(ltp_packet(FUT, 2455010)))
        tick = await stream.until(lambda f: f["type"] == "tick" and "snapshot" not in f)
        assert (tick["instrument"], tick["last"]) == ("NFO:NIFTY26DECFUT", "24550.10")
        ack = await stream.op(
            op="unsubscribe", id="u", channel="ticks", instruments=["NFO:NIFTY26DECFUT"]
        )
        assert ack["type"] == "ack", ack
        await eventually(lambda: FUT not in ticker_fake.subscribed)
        assert {"a": "unsubscribe", "v": [FUT]} in ticker_fake.messages
        assert set(ticker_fake.subscribed) == {RELIANCE}
    finally:
        await stream.close()
        await served.stop()


def _book(ask: int, ask_size: int, *, at: int) -> bytes:
    """RELIANCE in full mode: bid 2449.00 x 150, the given offer (paise), stamped ``at``."""
    return full_packet(
        RELIANCE, 245000, ohlc=(244000, 246000, 243500, 243850), volume=5_400_321,
        oi=(0, 0, 0), times=(at, at), bids=[(150, 244900, 3), *EMPTY],
        asks=[(ask_size, ask, 2), *EMPTY],
    )  # fmt: skip


async def _fills(trading: Desk, order_id: str, count: int) -> list[tuple[str, str]]:
    for _ in range(40):
        await trading.settle()
        found = await trading.fills(order_id)
        if len(found) >= count:
            return found
    raise AssertionError("no fill in time")


# 10:30 IST on a Thursday, NSE open (the order API refuses NSE orders while it is closed).
@time_machine.travel(dt.datetime(2026, 12, 3, 5, 0, tzinfo=dt.UTC), tick=True)
async def test_a_kite_tick_fills_a_resting_paper_limit(
    app: FastAPI,
    desk: Desk,  # noqa: F811
    ticker_fake: TickerFake,
) -> None:
    await _imported(app)
    order: dict[str, Any] = await desk.place(
        instrument="NSE:RELIANCE", side="buy", quantity=100, type="limit", limit_price="2450.00"
    )
    assert order["status"] == "new", order
    await eventually(lambda: ticker_fake.subscribed.get(RELIANCE) == "full")
    now = int(dt.datetime.now(dt.UTC).timestamp())
    await ticker_fake.send(frame(_book(245080, 200, at=now)))  # offered above the limit: rests
    quotes = QuoteService(app.state.ctx.cache, app.state.ctx.bus)
    for _ in range(100):
        quote = await quotes.get("NSE:RELIANCE")
        if quote is not None:
            break
        await asyncio.sleep(0.01)
    assert quote is not None
    assert (quote.bid, quote.ask, quote.ask_size) == (
        Decimal("2449.00"), Decimal("2450.80"), Decimal(200),
    )  # fmt: skip
    await desk.settle()
    assert await desk.fills(order["id"]) == []
    # The offer drops through the limit: a maker fills at its own price, up to the size shown.
    await ticker_fake.send(frame(_book(244990, 90, at=now + 1)))
    assert await _fills(desk, order["id"], 1) == [("90", "2450.00")]
    assert (await desk.order(order["id"]))["status"] == "partially_filled"
