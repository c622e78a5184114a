"""Latest quotes and trade prints: kept in the cache (in-process or Redis), announced on the bus.

Each quote is stored under ``quote:<KEY>`` and published on channel ``quotes.<KEY>``
(e.g. ``quotes.NSE:RELIANCE``) as the same JSON document the API returns, so the streaming
endpoint can forward bus messages to clients without re-encoding them.  A trade print is
published on ``trades.<KEY>`` (``{"key", "price", "size", "ts", "source_id"}``) and moves the
cached quote's ``last``.  Decimals travel as exact decimal strings, the timestamp as
ISO 8601 UTC; :func:`decode_quote` and :func:`decode_trade` read them back.

Every published quote and trade carries a ``source_id`` unique to it: the publisher's own
when it has one, else this service's prefix (random, per instance) and a counter.  The
paper-trading matcher keys fills by it (docs/market-data.md, "Quotes and trades").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import secrets
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson

from quantdesk.marketdata.domain import Quote, Trade, make_key, parse_key
from quantdesk.platform.bus import Bus
from quantdesk.platform.cache import Cache
from quantdesk.platform.decimals import decimal_text

CACHE_PREFIX = "quote:"
CHANNEL_PREFIX = "quotes."
TRADES_PREFIX = "trades."
# An order book (five levels, from a provider that has one: Kite in full mode), the latest
# cached under ``depth:<KEY>`` and each announced on ``depth.<KEY>``.
DEPTH_CACHE_PREFIX = "depth:"
DEPTH_PREFIX = "depth."
_OPTIONAL = (
    "bid", "ask", "bid_size", "ask_size", "volume", "oi", "change", "prev_close", "prev_oi",
)  # fmt: skip


def quote_channel(key: str) -> str:
    """The bus channel carrying ``key``'s quotes."""
    return CHANNEL_PREFIX + canonical_key(key)


def depth_channel(key: str) -> str:
    """The bus channel carrying ``key``'s order books."""
    return DEPTH_PREFIX + key


def depth_cache_key(key: str) -> str:
    return DEPTH_CACHE_PREFIX + key


def trade_channel(key: str) -> str:
    """The bus channel carrying ``key``'s trade prints."""
    return TRADES_PREFIX + canonical_key(key)


def canonical_key(key: str) -> str:
    exchange, symbol = parse_key(key)
    return make_key(exchange, symbol)


def _utc_text(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def quote_document(quote: Quote) -> dict[str, Any]:
    document: dict[str, Any] = {"key": quote.key, "last": decimal_text(quote.last)}
    for name in _OPTIONAL:
        value: Decimal | None = getattr(quote, name)
        document[name] = None if value is None else decimal_text(value)
    document["ts"] = _utc_text(quote.ts)
    document["source_id"] = quote.source_id or None
    return document


def encode_quote(quote: Quote) -> bytes:
    return orjson.dumps(quote_document(quote))


def decode_quote(payload: bytes) -> Quote:
    document = orjson.loads(payload)
    optional = {
        name: None if document.get(name) is None else Decimal(document[name]) for name in _OPTIONAL
    }
    return Quote(
        key=document["key"],
        last=Decimal(document["last"]),
        ts=dt.datetime.fromisoformat(document["ts"]),
        source_id=document.get("source_id") or "",
        **optional,
    )


def trade_document(trade: Trade) -> dict[str, Any]:
    return {
        "key": trade.key,
        "price": decimal_text(trade.price),
        "size": decimal_text(trade.size),
        "ts": _utc_text(trade.ts),
        "source_id": trade.source_id or None,
    }


def encode_trade(trade: Trade) -> bytes:
    return orjson.dumps(trade_document(trade))


def decode_trade(payload: bytes) -> Trade:
    document = orjson.loads(payload)
    return Trade(
        key=document["key"],
        price=Decimal(document["price"]),
        size=Decimal(document["size"]),
        ts=dt.datetime.fromisoformat(document["ts"]),
        source_id=document.get("source_id") or "",
    )


class QuoteService:
    def __init__(self, cache: Cache, bus: Bus) -> None:
        self.cache = cache
        self.bus = bus
        # Source ids: 48 random bits per service instance, then a counter (no global state;
        # two instances, in one process or many, collide with odds of 2^-48).
        self._id_prefix = secrets.token_hex(6)
        self._counter = itertools.count(1)

    def _next_id(self, kind: str) -> str:
        return f"{kind}:{self._id_prefix}:{next(self._counter)}"

    async def publish(self, quotes: Iterable[Quote]) -> int:
        """Store each quote as its instrument's latest and announce it; returns the count.

        A quote without a ``source_id`` gets one here.
        """
        latest = self._encoded(quotes)
        if latest:
            await self.bus.publish_stored(
                self.cache,
                [(CACHE_PREFIX + key, body) for key, body in latest.items()],
                [(CHANNEL_PREFIX + key, body) for key, body in latest.items()],
            )
        return len(latest)

    async def store(self, quotes: Iterable[Quote]) -> dict[str, bytes]:
        """Store each quote as its instrument's latest without announcing it (a cache that
        lost its quotes, refilled); returns what was stored, by key."""
        latest = self._encoded(quotes)
        if latest:
            await self.cache.set_many((CACHE_PREFIX + key, body) for key, body in latest.items())
        return latest

    def _encoded(self, quotes: Iterable[Quote]) -> dict[str, bytes]:
        latest: dict[str, bytes] = {}
        for quote in quotes:
            stamped = self._stamped(quote)
            latest[stamped.key] = encode_quote(stamped)
        return latest

    async def publish_one(self, quote: Quote) -> Quote:
        """Publish one quote; returns it as published (``source_id`` filled in)."""
        stamped = self._stamped(quote)
        await self.publish([stamped])
        return stamped

    def _stamped(self, quote: Quote) -> Quote:
        _check(quote.key, quote.ts, "quote")
        if quote.source_id:
            return quote
        return dataclasses.replace(quote, source_id=self._next_id("q"))

    async def get_many(self, keys: Sequence[str]) -> dict[str, Quote]:
        """The latest quote of each key that has one, by canonical key."""
        canonical = list(dict.fromkeys(canonical_key(key) for key in keys))
        payloads = await self.cache.get_many([CACHE_PREFIX + key for key in canonical])
        return {
            key: decode_quote(body)
            for key, body in zip(canonical, payloads, strict=True)
            if body is not None
        }

    async def get(self, key: str) -> Quote | None:
        return (await self.get_many([key])).get(canonical_key(key))

    async def publish_trade(self, trade: Trade) -> Trade:
        """Announce one print on ``trades.<KEY>`` and move the cached quote's ``last`` (and
        its volume, when it has one) to it; returns the trade as published, ``source_id``
        filled in.

        The cached quote keeps its ``ts`` and ``source_id`` (they describe the book, which a
        print does not change) and is not re-published: a repeated book on ``quotes.<KEY>``
        would look like fresh displayed size to the matcher.
        """
        _check(trade.key, trade.ts, "trade")
        if not trade.price.is_finite() or trade.price <= 0:
            raise ValueError(f"trade {trade.key}: price must be positive")
        if not trade.size.is_finite() or trade.size <= 0:
            raise ValueError(f"trade {trade.key}: size must be positive")
        if not trade.source_id:
            trade = dataclasses.replace(trade, source_id=self._next_id("t"))
        quote = await self.get(trade.key)
        if quote is not None:
            moved = dataclasses.replace(
                quote,
                last=trade.price,
                volume=None if quote.volume is None else quote.volume + trade.size,
                change=None if quote.prev_close is None else trade.price - quote.prev_close,
            )
            await self.cache.set(CACHE_PREFIX + trade.key, encode_quote(moved))
        await self.bus.publish(TRADES_PREFIX + trade.key, encode_trade(trade))
        return trade


def _check(key: str, ts: dt.datetime, what: str) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{what} {key}: ts must be timezone-aware")
    canonical = canonical_key(key)
    if canonical != key:
        raise ValueError(f"{what} key {key!r} is not canonical (use {canonical!r})")
