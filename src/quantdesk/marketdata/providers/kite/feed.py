"""From Kite ticks to quantdesk quotes on the bus.

Each tick becomes a ``Quote`` published through ``QuoteService`` (the cache's latest quote,
``quotes.<KEY>`` on the bus), exactly as the demo ticker publishes, so paper matching, the
stream and the chain analytics see Kite's market like the demo's.  A tick carries only the
fields of its mode (LTP mode: the last price), so each instrument's last quote is kept and
the new fields laid over it: switching an instrument to LTP mode does not blank its bid.

In full mode the five-level book goes out as well, on ``depth.<KEY>``:
``{"key", "ts", "bids": [{"price", "quantity", "orders"}] x 5, "asks": [...]}`` (decimal
strings), the top level also being the quote's bid/ask.  Each book is also the cache's
latest under ``depth:<KEY>`` (next to ``quote:<KEY>``, one write per book, before it is
announced), so the stream's full mode starts a subscriber with the book, as it does with
the quote.

Instrument tokens map to keys through ``TokenMap``, built from the instrument master
(``provider_token`` of the rows of Kite's exchanges imported from its dump).  The token's
low byte names the segment, which fixes the price unit (``protocol.price_exponent``: CDS
prices arrive in units of 10^-7 rupee, BCD's of 10^-4, the others' in paise); the key, and
with it the exchange, comes from the master.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.bars.repository import BarStore
from quantdesk.marketdata.domain import Quote, Timeframe, make_key
from quantdesk.marketdata.models import InstrumentRow
from quantdesk.marketdata.providers.kite.protocol import DepthLevel, Tick, price_exponent
from quantdesk.marketdata.providers.kite.provider import KITE_EXCHANGES
from quantdesk.marketdata.quotes.service import QuoteService, depth_cache_key, depth_channel
from quantdesk.platform.bus import Bus
from quantdesk.platform.decimals import decimal_text
from quantdesk.platform.exceptions import NotFound

_KITE_EXCHANGES: Final = tuple(sorted(e.value for e in KITE_EXCHANGES))


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


def tick_quote(
    tick: Tick,
    key: str,
    previous: Quote | None,
    now: dt.datetime,
    prev_oi: Decimal | None = None,
) -> Quote:
    """``tick`` as ``key``'s quote, laid over ``previous`` (fields the mode lacks kept).

    ``prev_oi`` is the open interest at the previous session's close (ticks do not carry
    it; the feed reads it from the stored daily bars), which the chain's OI-change and
    buildup readings need.

    Builds the ``Quote`` in one call rather than ``dataclasses.replace`` over the previous
    one: this runs for every tick (docs/benchmarks.md, "Kite ticker").
    """
    exponent = price_exponent(tick.token)
    last = Decimal(tick.last).scaleb(exponent)
    prev = previous
    if tick.close:
        prev_close: Decimal | None = Decimal(tick.close).scaleb(exponent)
    else:
        prev_close = prev.prev_close if prev is not None else None
    bid = ask = bid_size = ask_size = None
    depth = tick.depth
    if depth and tick.tradable:
        # depth[0:3] is the best bid (quantity, price, orders), depth[15:18] the best offer.
        if depth[0]:
            bid, bid_size = Decimal(depth[1]).scaleb(exponent), Decimal(depth[0])
        if depth[15]:
            ask, ask_size = Decimal(depth[16]).scaleb(exponent), Decimal(depth[15])
    elif prev is not None:
        bid, ask, bid_size, ask_size = prev.bid, prev.ask, prev.bid_size, prev.ask_size
    if tick.volume is not None:
        volume: Decimal | None = Decimal(tick.volume)
    else:
        volume = prev.volume if prev is not None else None
    if tick.oi is not None:
        oi = Decimal(tick.oi) if tick.oi else None  # 0: the instrument has no open interest
    else:
        oi = prev.oi if prev is not None else None
    return Quote(
        key=key,
        last=last,
        ts=_stamp(tick.exchange_time or tick.last_trade_time, now),
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        volume=volume,
        oi=oi,
        change=None if prev_close is None else last - prev_close,
        prev_close=prev_close,
        prev_oi=prev_oi if prev_oi is not None else (prev.prev_oi if prev is not None else None),
    )


async def previous_session_oi(
    db: AsyncSession, keys: Iterable[str], session: dt.date
) -> dict[str, Decimal]:
    """Each key's open interest on its last stored daily bar before ``session``."""
    store = BarStore(db)
    before = dt.datetime.combine(session, dt.time(0), tzinfo=dt.UTC)
    found: dict[str, Decimal] = {}
    for key in keys:
        try:
            series = await store.series(key, Timeframe.D1, end=before, limit=1)
        except NotFound:
            continue
        if len(series) and series.oi[-1] is not None:
            found[key] = Decimal(str(series.oi[-1]))
    return found


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
        # Open interest at the previous session's close, by token (derivatives).
        self.prev_oi: dict[int, Decimal] = {}

    async def __call__(self, ticks: list[Tick]) -> None:
        now = dt.datetime.now(dt.UTC)
        out: list[Quote] = []
        books: dict[str, bytes] = {}  # key -> its newest book in this batch
        announced: list[tuple[str, bytes]] = []
        for tick in ticks:
            key = self.tokens.by_token.get(tick.token)
            if key is None:
                self.unknown += 1
                continue
            quote = tick_quote(
                tick, key, self._last.get(tick.token), now, self.prev_oi.get(tick.token)
            )
            self._last[tick.token] = quote
            out.append(quote)
            if tick.depth:
                # A batch can hold several books of one instrument: only its newest is
                # worth storing, but every one is announced (the conflation is the stream's).
                body = orjson.dumps(depth_document(tick, key, quote.ts))
                books[key] = body
                announced.append((depth_channel(key), body))
        if out:
            await self.quotes.publish(out)
        if books:
            # Stored before announced, like quotes: a subscriber that listens first and
            # reads the cache second misses no book.
            await self.bus.publish_stored(
                self.quotes.cache,
                [(depth_cache_key(key), body) for key, body in books.items()],
                announced,
            )
