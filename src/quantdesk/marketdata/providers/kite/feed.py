"""From Kite ticks to quantdesk quotes on the bus.

Each tick becomes a ``Quote`` published through ``QuoteService`` (the cache's latest quote,
``quotes.<KEY>`` on the bus), exactly as the demo ticker publishes, so paper matching, the
stream and the chain analytics see Kite's market like the demo's.  A tick carries only the
fields of its mode (LTP mode: the last price), so each instrument's last quote is kept and
the new fields laid over it: switching an instrument to LTP mode does not blank its bid.

In full mode the five-level book goes out as well, on ``depth.<KEY>``:
``{"key", "ts", "bids": [{"price", "quantity", "orders"}] x 5, "asks": [...]}`` (decimal
strings), the top level also being the quote's bid/ask.

Instrument tokens map to keys through ``TokenMap``, built from the instrument master
(``provider_token`` of the NSE/BSE/NFO rows imported from Kite's dump).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Final

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import Quote, make_key
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.marketdata.providers.kite.protocol import DepthLevel, Mode, Tick
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.bus import Bus
from quantdesk.platform.decimals import decimal_text

DEPTH_PREFIX: Final = "depth."
_KITE_EXCHANGES: Final = ("NSE", "BSE", "NFO")


def depth_channel(key: str) -> str:
    return DEPTH_PREFIX + key


class TokenMap:
    """Instrument tokens <-> instrument keys, both ways."""

    def __init__(self, pairs: Iterable[tuple[int, str]] = ()) -> None:
        self.by_token: dict[int, str] = {}
        self.by_key: dict[str, int] = {}
        for token, key in pairs:
            self.by_token[token] = key
            self.by_key[key] = token

    def __len__(self) -> int:
        return len(self.by_token)

    @classmethod
    async def load(cls, db: AsyncSession) -> TokenMap:
        rows = await db.execute(
            select(InstrumentRow.exchange, InstrumentRow.symbol, InstrumentRow.provider_token)
            .where(InstrumentRow.exchange.in_(_KITE_EXCHANGES))
            .where(InstrumentRow.provider_token.is_not(None))
            .where(InstrumentRow.active.is_(True))
        )
        return cls(
            (int(token), make_key(exchange, symbol))
            for exchange, symbol, token in rows
            if token is not None and token.isdigit()
        )


def _stamp(epoch: int | None, fallback: dt.datetime) -> dt.datetime:
    if not epoch:
        return fallback
    try:
        return dt.datetime.fromtimestamp(epoch, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return fallback


def tick_quote(tick: Tick, key: str, previous: Quote | None, now: dt.datetime) -> Quote:
    """``tick`` as ``key``'s quote, laid over ``previous`` (fields the mode lacks kept)."""
    price = tick.price
    last = price(tick.last)
    base = previous or Quote(key=key, last=last, ts=now)
    fields: dict[str, Any] = {
        "last": last,
        "ts": _stamp(tick.exchange_time or tick.last_trade_time, now),
        "source_id": "",
    }
    if tick.close:
        close = price(tick.close)
        fields["prev_close"] = close
        fields["change"] = last - close
    elif base.prev_close is not None:
        fields["change"] = last - base.prev_close
    if tick.volume is not None:
        fields["volume"] = Decimal(tick.volume)
    if tick.oi is not None:
        fields["oi"] = Decimal(tick.oi) if tick.oi else None  # 0: the instrument has no OI
    if tick.mode is Mode.FULL and tick.tradable:
        bid, ask = _top(tick.bids, price), _top(tick.asks, price)
        fields["bid"], fields["bid_size"] = bid
        fields["ask"], fields["ask_size"] = ask
    return dataclasses.replace(base, **fields)


def _top(
    levels: tuple[DepthLevel, ...], price: Callable[[int], Decimal]
) -> tuple[Decimal | None, Decimal | None]:
    if not levels or levels[0].quantity == 0:
        return None, None
    return price(levels[0].price), Decimal(levels[0].quantity)


def depth_document(tick: Tick, key: str, ts: dt.datetime) -> dict[str, Any]:
    def side(levels: tuple[DepthLevel, ...]) -> list[dict[str, Any]]:
        return [
            {
                "price": decimal_text(tick.price(level.price)),
                "quantity": str(level.quantity),
                "orders": level.orders,
            }
            for level in levels
        ]

    return {
        "key": key,
        "ts": ts.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "bids": side(tick.bids),
        "asks": side(tick.asks),
    }


class TickPublisher:
    """The ticker's ``on_ticks``: quotes through ``QuoteService``, depth on the bus."""

    def __init__(self, quotes: QuoteService, bus: Bus, tokens: TokenMap) -> None:
        self.quotes = quotes
        self.bus = bus
        self.tokens = tokens
        self._last: dict[int, Quote] = {}
        self.unknown = 0  # ticks for tokens we have no key for

    async def __call__(self, ticks: list[Tick]) -> None:
        now = dt.datetime.now(dt.UTC)
        out: list[Quote] = []
        books: list[tuple[str, bytes]] = []
        for tick in ticks:
            key = self.tokens.by_token.get(tick.token)
            if key is None:
                self.unknown += 1
                continue
            quote = tick_quote(tick, key, self._last.get(tick.token), now)
            self._last[tick.token] = quote
            out.append(quote)
            if tick.mode is Mode.FULL and tick.bids:
                document = depth_document(tick, key, quote.ts)
                books.append((depth_channel(key), orjson.dumps(document)))
        if out:
            await self.quotes.publish(out)
        for channel, body in books:
            await self.bus.publish(channel, body)
