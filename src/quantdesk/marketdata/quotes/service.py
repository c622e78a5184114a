"""Latest quotes: kept in the cache (in-process or Redis) and announced on the bus.

Each quote is stored under ``quote:<KEY>`` and published on channel ``quotes.<KEY>``
(e.g. ``quotes.NSE:RELIANCE``) as the same JSON document the API returns, so the streaming
endpoint can forward bus messages to clients without re-encoding them.  Decimals travel as
strings and the timestamp as ISO 8601 UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson

from quantdesk.marketdata.domain import Quote, make_key, parse_key
from quantdesk.platform.bus import Bus
from quantdesk.platform.cache import Cache

CACHE_PREFIX = "quote:"
CHANNEL_PREFIX = "quotes."
_OPTIONAL = (
    "bid", "ask", "bid_size", "ask_size", "volume", "oi", "change", "prev_close", "prev_oi",
)  # fmt: skip


def quote_channel(key: str) -> str:
    """The bus channel carrying ``key``'s quotes."""
    return CHANNEL_PREFIX + canonical_key(key)


def canonical_key(key: str) -> str:
    exchange, symbol = parse_key(key)
    return make_key(exchange, symbol)


def quote_document(quote: Quote) -> dict[str, Any]:
    document: dict[str, Any] = {"key": quote.key, "last": str(quote.last)}
    for name in _OPTIONAL:
        value: Decimal | None = getattr(quote, name)
        document[name] = None if value is None else str(value)
    document["ts"] = quote.ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
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
        **optional,
    )


class QuoteService:
    def __init__(self, cache: Cache, bus: Bus) -> None:
        self.cache = cache
        self.bus = bus

    async def publish(self, quotes: Iterable[Quote]) -> int:
        """Store each quote as its instrument's latest and announce it; returns the count."""
        latest: dict[str, bytes] = {}
        for quote in quotes:
            if quote.ts.tzinfo is None:
                raise ValueError(f"quote {quote.key}: ts must be timezone-aware")
            key = canonical_key(quote.key)
            if key != quote.key:
                raise ValueError(f"quote key {quote.key!r} is not canonical (use {key!r})")
            latest[key] = encode_quote(quote)
        if not latest:
            return 0
        await self.cache.set_many((CACHE_PREFIX + key, body) for key, body in latest.items())
        for key, body in latest.items():
            await self.bus.publish(CHANNEL_PREFIX + key, body)
        return len(latest)

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
