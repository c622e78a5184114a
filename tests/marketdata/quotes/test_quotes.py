"""Latest quotes through the app's cache and bus (in-process, or Redis with --db=postgres)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import orjson
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.domain import Quote, Trade
from quantdesk.marketdata.quotes.service import (
    QuoteService,
    decode_quote,
    decode_trade,
    encode_quote,
    encode_trade,
    quote_channel,
    quote_document,
    trade_channel,
    trade_document,
)
from quantdesk.platform.context import AppContext

AT = dt.datetime(2025, 9, 1, 4, 0, 1, 250000, tzinfo=dt.UTC)


def reliance(last: str, ts: dt.datetime = AT) -> Quote:
    return Quote(
        key="NSE:RELIANCE",
        last=Decimal(last),
        ts=ts,
        bid=Decimal("1410.05"),
        ask=Decimal("1410.10"),
        bid_size=Decimal(120),
        ask_size=Decimal(75),
        volume=Decimal(1234567),
        oi=None,
        change=Decimal("-2.50"),
        prev_close=Decimal("1412.60"),
    )


def service(app: FastAPI) -> QuoteService:
    ctx: AppContext = app.state.ctx
    return QuoteService(ctx.cache, ctx.bus)


def test_wire_document_keeps_decimals_as_strings() -> None:
    document = quote_document(reliance("1410.10"))
    assert document == {
        "key": "NSE:RELIANCE",
        "last": "1410.10",
        "bid": "1410.05",
        "ask": "1410.10",
        "bid_size": "120",
        "ask_size": "75",
        "volume": "1234567",
        "oi": None,
        "change": "-2.50",
        "prev_close": "1412.60",
        "prev_oi": None,
        "ts": "2025-09-01T04:00:01.250000Z",
        "source_id": None,  # stamped by QuoteService.publish
    }
    assert decode_quote(encode_quote(reliance("1410.10"))) == reliance("1410.10")


async def test_latest_quote_per_instrument_via_cache(app: FastAPI) -> None:
    quotes = service(app)
    later = AT + dt.timedelta(seconds=1)
    tcs = Quote(key="NSE:TCS", last=Decimal("3050.00"), ts=AT)
    assert await quotes.publish([reliance("1410.10"), tcs, reliance("1411.00", later)]) == 2
    found = await quotes.get_many(["nse:reliance", "NSE:TCS", "NSE:INFY"])
    assert found == {"NSE:RELIANCE": reliance("1411.00", later), "NSE:TCS": tcs}
    assert await quotes.get("NSE:INFY") is None
    assert await quotes.publish([]) == 0


async def test_quotes_are_announced_on_the_bus(app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    channel = quote_channel("NSE:RELIANCE")
    assert channel == "quotes.NSE:RELIANCE"
    async with ctx.bus.subscribe([channel]) as subscription:
        await service(app).publish([Quote(key="NSE:TCS", last=Decimal(1), ts=AT)])
        await service(app).publish([reliance("1410.10")])
        message = await subscription.get(5)
    assert message is not None
    name, payload = message
    assert name == channel  # the TCS quote went to its own channel, not this one
    document = orjson.loads(payload)
    assert document.pop("source_id").startswith("q:")  # stamped on the way out
    expected = quote_document(reliance("1410.10"))
    del expected["source_id"]
    assert document == expected


async def test_bad_quotes_are_refused(app: FastAPI) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await service(app).publish(
            [Quote(key="NSE:TCS", last=Decimal(1), ts=dt.datetime(2025, 1, 1))]
        )
    with pytest.raises(ValueError, match="not canonical"):
        await service(app).publish([Quote(key="nse:tcs", last=Decimal(1), ts=AT)])
    with pytest.raises(ValueError, match="EXCHANGE:SYMBOL"):
        await service(app).get_many(["TCS"])


# --- source ids and trade prints ----------------------------------------------------------


async def test_every_published_quote_gets_its_own_source_id(app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    first, second = service(app), service(app)  # two publishers, as two processes would be
    async with ctx.bus.subscribe([quote_channel("NSE:RELIANCE")]) as subscription:
        await first.publish([reliance("1410.10")])
        await first.publish([reliance("1410.15")])
        await second.publish([reliance("1410.20")])
        ids = []
        for _ in range(3):
            message = await subscription.get(5)
            assert message is not None
            ids.append(decode_quote(message[1]).source_id)
    assert len(set(ids)) == 3
    assert all(i.startswith("q:") for i in ids)
    # The cache holds the same quote the bus carried, id included (seeding a matcher from
    # the cache must not make it look like a new quote).
    cached = await first.get("NSE:RELIANCE")
    assert cached is not None
    assert cached.source_id == ids[-1]
    # A publisher's own id is kept; the id is identity, not market state.
    own = replace(reliance("1410.25"), source_id="upstream-42")
    assert (await first.publish_one(own)).source_id == "upstream-42"
    stored = await first.get("NSE:RELIANCE")
    assert stored == reliance("1410.25")  # equal without comparing ids
    assert stored is not None
    assert stored.source_id == "upstream-42"


def test_trade_wire_document_round_trips() -> None:
    trade = Trade("SIM:ALPHA", Decimal("101.00"), Decimal(40), AT, "t:abc:1")
    assert trade_document(trade) == {
        "key": "SIM:ALPHA",
        "price": "101.00",
        "size": "40",
        "ts": "2025-09-01T04:00:01.250000Z",
        "source_id": "t:abc:1",
    }
    assert decode_trade(encode_trade(trade)) == trade
    assert trade_channel("sim:alpha") == "trades.SIM:ALPHA"


async def test_a_trade_print_is_announced_and_moves_the_last_price(app: FastAPI) -> None:
    ctx: AppContext = app.state.ctx
    quotes = service(app)
    book = await quotes.publish_one(
        Quote(
            key="SIM:ALPHA",
            last=Decimal("100.00"),
            ts=AT,
            bid=Decimal("99.95"),
            ask=Decimal("100.05"),
            bid_size=Decimal(500),
            ask_size=Decimal(300),
            volume=Decimal(1000),
            prev_close=Decimal("98.00"),
        )
    )
    later = AT + dt.timedelta(seconds=2)
    channels = [trade_channel("SIM:ALPHA"), quote_channel("SIM:ALPHA")]
    async with ctx.bus.subscribe(channels) as subscription:
        printed = await quotes.publish_trade(
            Trade(key="SIM:ALPHA", price=Decimal("101.00"), size=Decimal(40), ts=later)
        )
        message = await subscription.get(5)
        assert await subscription.get(0.2) is None  # the book is not re-announced
    assert message is not None
    assert message[0] == "trades.SIM:ALPHA"
    assert decode_trade(message[1]) == printed
    assert printed.source_id.startswith("t:")
    moved = await quotes.get("SIM:ALPHA")
    assert moved is not None
    assert (moved.last, moved.volume, moved.change) == (
        Decimal("101.00"),
        Decimal(1040),
        Decimal("3.00"),
    )
    # The book, its time and its id are unchanged: a print is not a new book.
    assert (moved.bid, moved.ask, moved.ts, moved.source_id) == (
        book.bid,
        book.ask,
        AT,
        book.source_id,
    )


async def test_bad_trades_are_refused(app: FastAPI) -> None:
    quotes = service(app)
    with pytest.raises(ValueError, match="timezone-aware"):
        await quotes.publish_trade(
            Trade("SIM:ALPHA", Decimal(1), Decimal(1), dt.datetime(2025, 1, 1))
        )
    with pytest.raises(ValueError, match="not canonical"):
        await quotes.publish_trade(Trade("sim:alpha", Decimal(1), Decimal(1), AT))
    with pytest.raises(ValueError, match="size must be positive"):
        await quotes.publish_trade(Trade("SIM:ALPHA", Decimal(1), Decimal(0), AT))
    with pytest.raises(ValueError, match="price must be positive"):
        await quotes.publish_trade(Trade("SIM:ALPHA", Decimal("NaN"), Decimal(1), AT))
