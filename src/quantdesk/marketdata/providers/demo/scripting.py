"""Scripted markets: an admin sets a SIM instrument's quote or prints a trade on it, and the
demo ticker leaves that instrument alone until it is handed back.

Tutorials ("push the price through your stop") and the API tests of the paper-trading
matching cases drive the market this way.  A scripted quote or trade goes through
``QuoteService`` like any tick: into the quote cache and onto ``quotes.<KEY>`` /
``trades.<KEY>``, with its own ``source_id``.

Which instruments are scripted lives in the cache as one marker per instrument
(``demo:scripted:<KEY>``), so every process, and the ticker's lease holder among them, agrees
on it; one key per instrument rather than one shared list, so two admins scripting two
instruments at once from two processes cannot lose either (a read-modify-write of a list
could).  The ticker asks only about its own SIM instruments, one ``MGET`` per tick.

Only ``SIM`` instruments may be scripted: the other demo instruments stand in for real
exchanges and follow their calendars.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import Exchange, Quote, Trade, make_key, parse_key
from quantdesk.marketdata.instruments.service import InstrumentService
from quantdesk.marketdata.quotes.service import QuoteService
from quantdesk.platform.cache import Cache
from quantdesk.platform.exceptions import InvalidInput

SCRIPTED_PREFIX = "demo:scripted:"
SCRIPTABLE_EXCHANGES = frozenset({Exchange.SIM})
_MARK = b"1"


def scriptable_key(key: str) -> str:
    """``key`` in canonical form when it names a scriptable (SIM) instrument; else 422."""
    try:
        exchange, symbol = parse_key(key)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="key") from None
    if exchange not in SCRIPTABLE_EXCHANGES:
        raise InvalidInput(
            f"only simulated instruments can be scripted (SIM:...), not {key}", field="key"
        )
    return make_key(exchange, symbol)


async def scripted_keys(cache: Cache, keys: Sequence[str]) -> frozenset[str]:
    """Those of ``keys`` (canonical) an admin has scripted."""
    if not keys:
        return frozenset()
    marks = await cache.get_many([SCRIPTED_PREFIX + key for key in keys])
    return frozenset(key for key, mark in zip(keys, marks, strict=True) if mark is not None)


def _on_grid(value: Decimal, tick: Decimal, field: str, key: str) -> None:
    if value % tick != 0:
        raise InvalidInput(
            f"{field} {value} of {key} is not a multiple of its tick {tick}", field=field
        )


class MarketScript:
    """The use cases behind ``/api/v1/admin/demo``."""

    def __init__(self, db: AsyncSession, cache: Cache, quotes: QuoteService) -> None:
        self.db = db
        self.cache = cache
        self.quotes = quotes

    async def _tick_of(self, key: str) -> tuple[str, Decimal]:
        """The canonical key and tick size of a scriptable instrument (404 when unknown)."""
        canonical = scriptable_key(key)
        row = await InstrumentService(self.db).get_row(canonical)
        return canonical, row.tick_size

    async def _claim(self, key: str) -> None:
        # Marked before publishing, so the ticker's next step already leaves it alone.
        await self.cache.set(SCRIPTED_PREFIX + key, _MARK)

    async def set_quote(
        self,
        key: str,
        *,
        bid: Decimal,
        bid_size: Decimal,
        ask: Decimal,
        ask_size: Decimal,
        last: Decimal,
        now: dt.datetime,
    ) -> Quote:
        """Set the instrument's book and last price, take it from the ticker, publish it.

        What the admin does not set (volume, open interest, the previous close) carries
        over from the instrument's current quote, so ``change`` stays a day's change.
        """
        key, tick = await self._tick_of(key)
        for field, value in (("bid", bid), ("ask", ask), ("last", last)):
            _on_grid(value, tick, field, key)
        if bid > ask:
            raise InvalidInput(f"bid {bid} is above ask {ask}", field="bid")
        previous = await self.quotes.get(key)
        prev_close = previous.prev_close if previous is not None else None
        quote = Quote(
            key=key,
            last=last,
            ts=now,
            bid=bid,
            ask=ask,
            bid_size=bid_size,
            ask_size=ask_size,
            volume=previous.volume if previous is not None else None,
            oi=previous.oi if previous is not None else None,
            change=last - prev_close if prev_close is not None else None,
            prev_close=prev_close,
            prev_oi=previous.prev_oi if previous is not None else None,
        )
        await self._claim(key)
        return await self.quotes.publish_one(quote)

    async def print_trade(
        self, key: str, *, price: Decimal, size: Decimal, now: dt.datetime
    ) -> Trade:
        """Print a trade on the instrument (and take it from the ticker)."""
        key, tick = await self._tick_of(key)
        _on_grid(price, tick, "price", key)
        await self._claim(key)
        return await self.quotes.publish_trade(Trade(key=key, price=price, size=size, ts=now))

    async def release(self, key: str) -> str:
        """Hand the instrument back to the demo ticker (a no-op when it is not scripted)."""
        key, _tick = await self._tick_of(key)
        await self.cache.delete(SCRIPTED_PREFIX + key)
        return key
