"""The ticker against a local WebSocket server speaking Kite's protocol: subscriptions,
ticks to the bus, heartbeats, malformed frames, dropped connections, a refused token."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest

from quantdesk.marketdata.instruments.importers import import_instruments
from quantdesk.marketdata.providers.kite.auth import TokenSource
from quantdesk.marketdata.providers.kite.feed import TickPublisher, TokenMap
from quantdesk.marketdata.providers.kite.protocol import Mode, Tick
from quantdesk.marketdata.providers.kite.ticker import KiteTicker
from quantdesk.marketdata.quotes.service import QuoteService, decode_quote
from quantdesk.platform.bus import MemoryBus
from quantdesk.platform.cache import MemoryCache
from quantdesk.platform.db import Database
from tests.marketdata.providers.kite.conftest import MemoryTokens
from tests.marketdata.providers.kite.fake_kite import (
    API_KEY,
    GOLD_TOKEN,
    INSTRUMENTS_CSV,
    USDINR_TOKEN,
    TickerFake,
    eventually,
    frame,
    full_packet,
    ltp_packet,
)
from tests.support.servers import free_port

RELIANCE, FUT = 738561, 13368834
TOKENS = TokenMap([(RELIANCE, "NSE:RELIANCE"), (FUT, "NFO:NIFTY26DECFUT")])
BIDS = [(150, 2455000, 3), (75, 2454990, 1), (0, 0, 0), (0, 0, 0), (0, 0, 0)]
ASKS = [(300, 2455020, 4), (10, 2455030, 1), (0, 0, 0), (0, 0, 0), (0, 0, 0)]


def future_tick(last: int) -> bytes:
    return full_packet(
        FUT, last, ohlc=(2440000, 2460000, 2435000, 2441000), volume=1_234_500,
        oi=(11_250_000, 11_400_000, 11_100_000), times=(1_764_735_299, 1_764_735_300),
        bids=BIDS, asks=ASKS,
    )  # fmt: skip


class Feed:
    def __init__(self, fake: TickerFake, tokens: MemoryTokens, idle_timeout_s: float = 5) -> None:
        self.bus = MemoryBus()
        self.cache = MemoryCache()
        self.publisher = TickPublisher(QuoteService(self.cache, self.bus), self.bus, TOKENS)
        self.tokens = tokens
        self.ticker = KiteTicker(
            API_KEY, TokenSource(tokens, ttl_s=0), self.publisher, url=fake.url,
            backoff_initial_s=0.01, backoff_max_s=0.05, token_poll_s=0.05,
            idle_timeout_s=idle_timeout_s,
            connect_options={"proxy": None},
        )  # fmt: skip


@pytest.fixture
async def feed(ticker_fake: TickerFake) -> AsyncIterator[Feed]:
    running = Feed(ticker_fake, MemoryTokens())
    running.ticker.start()
    yield running
    await running.ticker.stop()


async def test_ticks_reach_the_bus_with_depth_and_merge_by_mode(
    feed: Feed, ticker_fake: TickerFake
) -> None:
    async with feed.bus.subscribe(["quotes.NFO:NIFTY26DECFUT", "depth.NFO:NIFTY26DECFUT"]) as sub:
        feed.ticker.subscribe({FUT: Mode.FULL, RELIANCE: Mode.LTP})
        await eventually(lambda: ticker_fake.subscribed == {FUT: "full", RELIANCE: "ltp"})
        await ticker_fake.send(frame(future_tick(2455010)))
        first, second = await sub.get(2), await sub.get(2)
        assert first is not None
        assert second is not None
        quote = decode_quote(first[1])
        assert (quote.key, quote.last, quote.bid, quote.ask) == (
            "NFO:NIFTY26DECFUT", Decimal("24550.10"), Decimal("24550.00"), Decimal("24550.20"),
        )  # fmt: skip
        assert (quote.bid_size, quote.ask_size, quote.oi) == (
            Decimal(150),
            Decimal(300),
            Decimal(11_250_000),
        )
        assert (quote.prev_close, quote.change) == (Decimal("24410.00"), Decimal("140.10"))
        assert quote.ts == dt.datetime.fromtimestamp(1_764_735_300, dt.UTC)
        depth = orjson.loads(second[1])
        assert depth["bids"][1] == {"price": "24549.90", "quantity": "75", "orders": 1}
        assert len(depth["asks"]) == 5
        # An LTP packet moves the last price; the book from the full tick stays.
        await ticker_fake.send(frame(ltp_packet(FUT, 2455100)))
        moved = await sub.get(2)
        assert moved is not None
        assert (decode_quote(moved[1]).last, decode_quote(moved[1]).bid) == (
            Decimal("24551.00"), Decimal("24550.00"),
        )  # fmt: skip
    cached = await QuoteService(feed.cache, feed.bus).get("NFO:NIFTY26DECFUT")
    assert cached is not None
    assert cached.last == Decimal("24551.00")


async def test_currency_and_commodity_ticks_reach_the_bus_in_rupees(
    ticker_fake: TickerFake, md_database: Database
) -> None:
    # The token map comes from the master the dump was imported into, CDS and MCX included.
    async with md_database.session(immediate=True) as session:
        await import_instruments(session, INSTRUMENTS_CSV)
    async with md_database.session() as session:
        tokens = await TokenMap.load(session)
    assert tokens.by_token[USDINR_TOKEN] == "CDS:USDINR26DECFUT"
    assert tokens.by_token[GOLD_TOKEN] == "MCX:GOLD26DECFUT"
    bus = MemoryBus()
    publisher = TickPublisher(QuoteService(MemoryCache(), bus), bus, tokens)
    ticker = KiteTicker(
        API_KEY, TokenSource(MemoryTokens(), ttl_s=0), publisher, url=ticker_fake.url,
        backoff_initial_s=0.01, backoff_max_s=0.05, token_poll_s=0.05, idle_timeout_s=5,
        connect_options={"proxy": None},
    )  # fmt: skip
    ticker.start()
    try:
        channels = ["quotes.CDS:USDINR26DECFUT", "quotes.MCX:GOLD26DECFUT"]
        async with bus.subscribe(channels) as sub:
            ticker.subscribe({USDINR_TOKEN: Mode.LTP, GOLD_TOKEN: Mode.LTP})
            await eventually(lambda: len(ticker_fake.subscribed) == 2)
            # CDS prices travel in 10^-7 rupee: 887525000 is 88.7525 (a 0.25-paise tick);
            # MCX's in paise like NSE's: 13245600 is 132456.00 (gold, per 10 g).
            await ticker_fake.send(
                frame(ltp_packet(USDINR_TOKEN, 887_525_000), ltp_packet(GOLD_TOKEN, 13_245_600))
            )
            first, second = await sub.get(2), await sub.get(2)
            assert first is not None
            assert second is not None
            quotes = {q.key: q.last for q in (decode_quote(first[1]), decode_quote(second[1]))}
    finally:
        await ticker.stop()
    assert quotes == {
        "CDS:USDINR26DECFUT": Decimal("88.7525"),
        "MCX:GOLD26DECFUT": Decimal("132456.00"),
    }
    assert str(quotes["CDS:USDINR26DECFUT"].normalize()) == "88.7525"


async def test_heartbeats_and_malformed_frames_keep_the_connection(
    feed: Feed, ticker_fake: TickerFake
) -> None:
    feed.ticker.subscribe({RELIANCE: Mode.LTP})
    await eventually(lambda: RELIANCE in ticker_fake.subscribed)
    good = frame(ltp_packet(RELIANCE, 245065))
    await ticker_fake.send(b"\x00")  # heartbeat
    await ticker_fake.send(good[:-3])  # lengths that run past the end
    await ticker_fake.send(b"\x00\x01\x00\x02\xff\xff")  # a packet of an unknown length
    await ticker_fake.send(good)
    await eventually(lambda: feed.ticker.status()["connections"][0]["tick_count"] == 1)
    status = feed.ticker.status()["connections"][0]
    assert (status["state"], status["malformed_frames"], status["reconnects"]) == (
        "connected",
        1,
        0,
    )
    assert (await QuoteService(feed.cache, feed.bus).get("NSE:RELIANCE")) is not None
    assert ticker_fake.handshakes == 1


async def test_a_dropped_connection_reconnects_and_resubscribes(
    feed: Feed, ticker_fake: TickerFake
) -> None:
    feed.ticker.subscribe({RELIANCE: Mode.QUOTE, FUT: Mode.FULL})
    await eventually(lambda: ticker_fake.subscribed == {RELIANCE: "quote", FUT: "full"})
    await ticker_fake.drop_all()
    await eventually(lambda: ticker_fake.subscribed == {RELIANCE: "quote", FUT: "full"})
    assert ticker_fake.handshakes == 2
    assert feed.ticker.status()["connections"][0]["reconnects"] == 1
    # Changes while connected are sent as differences.
    feed.ticker.subscribe({FUT: Mode.LTP})
    await eventually(lambda: ticker_fake.subscribed == {FUT: "ltp"})
    assert ticker_fake.messages[-2:] == [
        {"a": "unsubscribe", "v": [RELIANCE]},
        {"a": "mode", "v": ["ltp", [FUT]]},
    ]


async def test_a_refused_token_waits_for_the_next_login(ticker_fake: TickerFake) -> None:
    tokens = MemoryTokens()
    feed = Feed(ticker_fake, tokens)
    ticker_fake.accept = False  # the 06:00 IST flush
    feed.ticker.start()
    try:
        feed.ticker.subscribe({RELIANCE: Mode.LTP})
        await eventually(lambda: tokens.rejected != [])
        await asyncio.sleep(0.3)  # several poll periods: no reconnect storm
        assert ticker_fake.handshakes == 1
        assert feed.ticker.status()["connections"][0]["state"] == "waiting_for_login"
        ticker_fake.accept, tokens.token = True, ticker_fake.access_token  # a new login
        await eventually(lambda: RELIANCE in ticker_fake.subscribed)
        assert feed.ticker.status()["connections"][0]["state"] == "connected"
    finally:
        await feed.ticker.stop()


async def _ignore(_ticks: list[Tick]) -> None:
    return None


def test_instruments_are_spread_over_three_connections_at_most() -> None:
    ticker = KiteTicker(API_KEY, TokenSource(MemoryTokens()), _ignore, per_connection=2)
    ticker.subscribe(dict.fromkeys(range(1, 8), Mode.LTP))
    assert [len(c.desired) for c in ticker._connections] == [2, 2, 2]
    assert ticker.dropped == [7]
    ticker.subscribe(dict.fromkeys((1, 3, 5, 7), Mode.LTP))  # those kept stay where they were
    assert [sorted(c.desired) for c in ticker._connections] == [[1, 7], [3], [5]]


async def test_a_silent_connection_is_replaced_and_heartbeats_keep_one(
    ticker_fake: TickerFake,
) -> None:
    feed = Feed(ticker_fake, MemoryTokens(), idle_timeout_s=0.3)
    feed.ticker.subscribe({RELIANCE: Mode.LTP})
    feed.ticker.start()
    subscribe = {"a": "subscribe", "v": [RELIANCE]}
    try:
        await eventually(lambda: RELIANCE in ticker_fake.subscribed)
        for _ in range(6):  # 0.6 s, twice the idle timeout, of heartbeats every 0.1 s
            await ticker_fake.send(b"\x00")
            await asyncio.sleep(0.1)
        assert ticker_fake.handshakes == 1
        assert feed.ticker.status()["connections"][0]["reconnects"] == 0
        # Then nothing: after 0.3 s the connection is taken as dead and a new one subscribes.
        await eventually(lambda: ticker_fake.handshakes == 2, within_s=2)
        await eventually(lambda: ticker_fake.messages.count(subscribe) == 2)
        status = feed.ticker.status()["connections"][0]
        assert status["reconnects"] == 1
        assert status["error"] == "silent: no frame, not even a heartbeat, within the idle timeout"
    finally:
        await feed.ticker.stop()


def _ticker(url: str, sleep: Callable[[float], Awaitable[None]], **options: Any) -> KiteTicker:
    return KiteTicker(
        API_KEY, TokenSource(MemoryTokens(), ttl_s=0), _ignore, url=url, sleep=sleep,
        connect_options={"proxy": None}, **options,
    )  # fmt: skip


async def test_the_reconnect_backoff_doubles_to_its_ceiling_with_jitter() -> None:
    """Ceilings 1, 2, 4, 8, 8, 8 s; the delay is half the ceiling plus the jitter's share of
    the other half (fractions 1, 1, 1, 0, 0.5, 0.25 here)."""
    fractions = iter([1.0, 1.0, 1.0, 0.0, 0.5, 0.25])
    delays: list[float] = []
    enough = asyncio.Event()

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 6:
            enough.set()
            await asyncio.Event().wait()  # no seventh attempt: wait to be stopped
        await asyncio.sleep(0)

    nobody = f"ws://127.0.0.1:{free_port()}"  # connection refused, at once
    ticker = _ticker(
        nobody, sleep, backoff_initial_s=1.0, backoff_max_s=8.0, jitter=lambda: next(fractions)
    )
    ticker.subscribe({RELIANCE: Mode.LTP})
    ticker.start()
    try:
        async with asyncio.timeout(5):
            await enough.wait()
    finally:
        await ticker.stop()
    assert delays == [1.0, 2.0, 4.0, 4.0, 6.0, 5.0]
    assert ticker.status()["connections"][0]["reconnects"] == 6


async def test_the_backoff_starts_again_after_a_connection_that_lived_a_minute(
    ticker_fake: TickerFake,
) -> None:
    now = [1_000.0]
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await asyncio.sleep(0)

    def connected(handshakes: int) -> Callable[[], bool]:
        return lambda: ticker_fake.handshakes == handshakes and RELIANCE in ticker_fake.subscribed

    ticker = _ticker(ticker_fake.url, sleep, jitter=lambda: 1.0, clock=lambda: now[0])
    ticker.subscribe({RELIANCE: Mode.LTP})
    ticker.start()
    try:
        for handshakes, lived_s in ((1, 0.0), (2, 0.0), (3, 61.0)):
            await eventually(connected(handshakes))
            now[0] += lived_s
            await ticker_fake.drop_all()
            await eventually(lambda n=handshakes: len(delays) == n)  # type: ignore[misc]
    finally:
        await ticker.stop()
    # Two quick drops: 1 s then 2 s; a drop after 61 s connected: back to 1 s.
    assert delays == [1.0, 2.0, 1.0]
