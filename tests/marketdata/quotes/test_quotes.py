"""Latest quotes through the app's cache and bus (in-process, or Redis with --db=postgres)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest
from fastapi import FastAPI

from quantdesk.marketdata.domain import Quote
from quantdesk.marketdata.quotes.service import (
    QuoteService,
    decode_quote,
    encode_quote,
    quote_channel,
    quote_document,
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
    assert orjson.loads(payload) == quote_document(reliance("1410.10"))


async def test_bad_quotes_are_refused(app: FastAPI) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await service(app).publish(
            [Quote(key="NSE:TCS", last=Decimal(1), ts=dt.datetime(2025, 1, 1))]
        )
    with pytest.raises(ValueError, match="not canonical"):
        await service(app).publish([Quote(key="nse:tcs", last=Decimal(1), ts=AT)])
    with pytest.raises(ValueError, match="EXCHANGE:SYMBOL"):
        await service(app).get_many(["TCS"])
