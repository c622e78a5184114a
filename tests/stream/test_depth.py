"""Full mode carries the order book, as Kite's full mode does: the Kite feed's books
(``depth.<KEY>``) reach full-mode subscribers as ``depth`` frames in exact decimal strings,
with the cached one as a snapshot on subscribe, conflated to the newest for a slow client;
quote and LTP subscribers get none, and the hub listens to an instrument's book only while
a connection follows it in full mode."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import orjson

from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.providers.kite.feed import TickPublisher, TokenMap, depth_document
from quantdesk.marketdata.providers.kite.protocol import Mode, Tick
from quantdesk.marketdata.quotes.service import QuoteService, depth_channel
from quantdesk.platform.bus import MemoryBus, RedisBus
from quantdesk.platform.context import AppContext
from quantdesk.stream.service import TickHub, stream_service
from tests.stream.conftest import Client, Desk, Served, conflated, open_stream, slow_client

# NFO tokens (segment 2 in the low byte): prices in paise.
FUT, FUT_KEY = 13368834, "NFO:BANKNIFTY26DECFUT"
OTHER, OTHER_KEY = 13369090, "NFO:FINNIFTY26DECFUT"
TOKENS = TokenMap([(FUT, FUT_KEY), (OTHER, OTHER_KEY)])
AT = dt.datetime(2026, 12, 3, 9, 15, 2, tzinfo=dt.UTC)
# (quantity, price in paise, orders), best first; Kite sends empty levels as zeros.
BIDS = ((150, 5245000, 3), (75, 5244990, 1), (1200, 5244905, 12), (0, 0, 0), (0, 0, 0))
ASKS = ((300, 5245020, 4), (10, 5245030, 1), (0, 0, 0), (0, 0, 0), (0, 0, 0))
EMPTY = {"price": "0.00", "quantity": "0", "orders": 0}
BOOK = {
    "type": "depth",
    "instrument": FUT_KEY,
    "ts": "2026-12-03T09:15:02Z",
    "bids": [
        {"price": "52450.00", "quantity": "150", "orders": 3},
        {"price": "52449.90", "quantity": "75", "orders": 1},
        {"price": "52449.05", "quantity": "1200", "orders": 12},
        EMPTY,
        EMPTY,
    ],
    "asks": [
        {"price": "52450.20", "quantity": "300", "orders": 4},
        {"price": "52450.30", "quantity": "10", "orders": 1},
        EMPTY,
        EMPTY,
        EMPTY,
    ],
}


def _full_tick(token: int = FUT, bids: tuple[tuple[int, int, int], ...] = BIDS) -> Tick:
    depth = tuple(n for level in (*bids, *ASKS) for n in level)
    return Tick(
        token, Mode.FULL, 5245010, volume=81250, close=5200000,
        exchange_time=int(AT.timestamp()), depth=depth,
    )  # fmt: skip


def _publisher(ctx: AppContext) -> TickPublisher:
    return TickPublisher(QuoteService(ctx.cache, ctx.bus), ctx.bus, TOKENS)


async def _publish_book(ctx: AppContext, tick: Tick, key: str) -> dict[str, Any]:
    """The book alone on the bus, as the feed announces it; returns it as the frame's body."""
    document = depth_document(tick, key, AT)
    await ctx.bus.publish(depth_channel(key), orjson.dumps(document))
    return document


async def _quote(ctx: AppContext, key: str, last: str) -> None:
    await QuoteService(ctx.cache, ctx.bus).publish_one(
        Quote(key=key, last=Decimal(last), ts=dt.datetime.now(dt.UTC))
    )


async def _books_after_barrier(client: Client, ctx: AppContext, key: str, last: str) -> list[Any]:
    """The depth frames ``client`` has received once everything queued for it before now
    has been sent: a quote published now arrives after them (or in the same batch), and a
    pong to a ping sent after that quote follows the whole batch."""
    await _quote(ctx, key, last)
    await client.until(lambda f: f["type"] == "tick" and f["last"] == last)
    assert (await client.op(op="ping", id="barrier"))["type"] == "pong"
    return [f for f in client.frames if f["type"] == "depth"]


def _hub(ctx: AppContext) -> TickHub:
    service = stream_service(ctx)
    assert service is not None
    return service.ticks


async def _bus_listeners(ctx: AppContext, channel: str) -> int:
    """Subscriptions to ``channel`` on the bus itself (not what the hub means to follow)."""
    bus = ctx.bus
    if isinstance(bus, RedisBus):
        assert ctx.redis is not None
        [(_, count)] = await ctx.redis.pubsub_numsub("qd:bus:" + channel)
        return int(count)
    assert isinstance(bus, MemoryBus)
    return len(bus._subscribers.get(channel, ()))  # the in-process bus has no public count


async def _until_listeners(ctx: AppContext, channel: str, count: int) -> None:
    for _ in range(200):
        if await _bus_listeners(ctx, channel) == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{channel}: {await _bus_listeners(ctx, channel)} listeners, not {count}")


async def test_full_mode_gets_the_book_quote_and_ltp_do_not(served: Served, desk: Desk) -> None:
    full = await open_stream(served.url, desk.client, desk.trader)
    quote = await open_stream(served.url, desk.client, desk.trader)
    ltp = await open_stream(served.url, desk.client, desk.trader)
    ack = await full.op(op="subscribe", id="f", channel="ticks", mode="full", instruments=[FUT_KEY])
    assert ack["subscriptions"]["ticks"] == {"ltp": [], "quote": [], "full": [FUT_KEY]}
    await quote.op(op="subscribe", id="q", channel="ticks", mode="quote", instruments=[FUT_KEY])
    await ltp.op(op="subscribe", id="l", channel="ticks", mode="ltp", instruments=[FUT_KEY])

    await _publisher(desk.ctx)([_full_tick()])
    # Quotes and books travel on channels of their own: either may come first.
    await full.until(lambda _: {"tick", "depth"} <= {f["type"] for f in full.frames})
    [book] = [f for f in full.frames if f["type"] == "depth"]
    [tick] = [f for f in full.frames if f["type"] == "tick"]
    assert book == BOOK
    # The book's top level is the quote's best bid and offer.
    assert (tick["bid"], tick["bid_size"], tick["ask"], tick["ask_size"]) == (
        "52450.00", "150", "52450.20", "300",
    )  # fmt: skip
    for client in (quote, ltp):
        assert await _books_after_barrier(client, desk.ctx, FUT_KEY, "52451.00") == []
    for client in (full, quote, ltp):
        await client.close()


async def test_book_snapshot_and_mode_switches(served: Served, desk: Desk) -> None:
    ctx, channel = desk.ctx, depth_channel(FUT_KEY)
    await _publisher(ctx)([_full_tick()])  # before anyone listens: in the cache only
    client = await open_stream(served.url, desk.client, desk.trader)
    await client.op(op="subscribe", id="q", channel="ticks", mode="quote", instruments=[FUT_KEY])
    assert (await client.until(lambda f: f["type"] == "tick"))["snapshot"] is True
    assert await _bus_listeners(ctx, channel) == 0  # quote mode: the hub ignores books

    ack = await client.op(
        op="subscribe", id="f", channel="ticks", mode="full", instruments=[FUT_KEY]
    )
    assert ack["subscriptions"]["ticks"] == {"ltp": [], "quote": [], "full": [FUT_KEY]}
    snapshot = await client.until(lambda f: f["type"] == "depth")
    assert snapshot == {**BOOK, "snapshot": True}
    assert await _bus_listeners(ctx, channel) == 1
    assert _hub(ctx).book_subscribers.keys() == {FUT_KEY}

    await client.op(op="subscribe", id="q2", channel="ticks", mode="quote", instruments=[FUT_KEY])
    await _until_listeners(ctx, channel, 0)  # nobody in full mode: the book's channel goes
    assert await _bus_listeners(ctx, "quotes." + FUT_KEY) == 1  # the quotes' stays
    client.frames.clear()
    await _publisher(ctx)([_full_tick()])
    assert await _books_after_barrier(client, ctx, FUT_KEY, "52452.00") == []
    await client.close()


async def test_unsubscribe_stops_the_books(served: Served, desk: Desk) -> None:
    ctx = desk.ctx
    client = await open_stream(served.url, desk.client, desk.trader)
    both = [FUT_KEY, OTHER_KEY]
    await client.op(op="subscribe", id="f", channel="ticks", mode="full", instruments=both)
    await _publish_book(ctx, _full_tick(), FUT_KEY)
    assert await client.until(lambda f: f["type"] == "depth") == BOOK

    ack = await client.op(op="unsubscribe", id="u", channel="ticks", instruments=[FUT_KEY])
    assert ack["subscriptions"]["ticks"] == {"ltp": [], "quote": [], "full": [OTHER_KEY]}
    client.frames.clear()
    # One batch, one bus subscription: FUT's book is delivered to the hub before OTHER's.
    await _publish_book(ctx, _full_tick(), FUT_KEY)
    await _publish_book(ctx, _full_tick(OTHER), OTHER_KEY)
    got = await client.until(lambda f: f["type"] == "depth")
    assert got == {**BOOK, "instrument": OTHER_KEY}
    assert await _books_after_barrier(client, ctx, OTHER_KEY, "52453.00") == [got]

    await client.op(op="unsubscribe", id="u2", channel="ticks", instruments=[OTHER_KEY])
    for key in both:
        await _until_listeners(ctx, depth_channel(key), 0)
    assert _hub(ctx).book_subscribers == {}
    await client.close()


async def test_slow_client_gets_the_newest_book(served: Served, desk: Desk) -> None:
    ctx = desk.ctx
    client = await slow_client(served, desk)
    await client.op(op="subscribe", id="f", channel="ticks", mode="full", instruments=[FUT_KEY])
    # The client does not read while books pour in, each best bid 0.05 above the last.
    before = conflated(ctx)
    published = 0
    newest: dict[str, Any] = {}
    while published < 20_000 and conflated(ctx) - before <= 100:
        best = (150, 5245000 + 5 * published, 3)
        newest = await _publish_book(ctx, _full_tick(bids=(best, *BIDS[1:])), FUT_KEY)
        published += 1
        await asyncio.sleep(0)
    assert conflated(ctx) - before > 100
    last_bid = newest["bids"][0]["price"]
    assert last_bid == f"{Decimal(5245000 + 5 * (published - 1)).scaleb(-2)}"
    books: list[dict[str, Any]] = []
    while not books or books[-1]["bids"][0]["price"] != last_bid:
        frame = await client.recv()
        if frame["type"] == "depth":
            books.append(frame)
    assert books[-1] == {**BOOK, "bids": newest["bids"]}
    assert books[-1]["bids"][0] == {"price": last_bid, "quantity": "150", "orders": 3}
    # Only some of the books were sent, each newer than the one before: none came late.
    bids = [Decimal(book["bids"][0]["price"]) for book in books]
    assert len(books) < published - 100
    assert bids == sorted(set(bids))
    await client.close()
