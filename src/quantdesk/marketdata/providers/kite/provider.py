"""``KiteProvider``: the ``Provider`` interface over Kite Connect, plus what only Kite has
(batched quotes, the instruments dump, every candle interval, OI).

Instruments are found by instrument token: an instrument imported from Kite's dump keeps
its ``instrument_token`` as ``provider_token``; any other instrument of Kite's exchanges
(NSE, BSE, NFO, BFO, MCX, CDS, BCD) is looked up in the day's dump by key.  US listings and
SIM are not Kite's and are refused.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from quantdesk.marketdata.domain import Bar, Exchange, Instrument, Quote, Timeframe
from quantdesk.marketdata.instruments.importers import ImportFormat, parse_instruments
from quantdesk.marketdata.providers.base import check_bars_request
from quantdesk.marketdata.providers.http_client import OutcomeHook
from quantdesk.marketdata.providers.kite.auth import IST, KiteTokenStore, TokenSource
from quantdesk.marketdata.providers.kite.client import Endpoint, KiteApi
from quantdesk.marketdata.providers.kite.historical import (
    KITE_INTERVALS,
    MAX_SPAN_DAYS,
    kite_time,
    parse_candles,
    wants_oi,
    windows,
)
from quantdesk.marketdata.providers.kite.quotes import (
    QuoteKind,
    batch_url,
    batches,
    parse_quotes,
)
from quantdesk.marketdata.providers.parsing import bars_in_range
from quantdesk.platform.db import Database
from quantdesk.platform.exceptions import InvalidInput, NotFound
from quantdesk.platform.tls import redis_tls_options
from quantdesk.security.pii import PiiCipher
from quantdesk.settings import Settings

# Kite's exchange codes that quantdesk lists (the dump also holds NSEIX, MCXSX, ...).
KITE_EXCHANGES: Final = frozenset(
    {
        Exchange.NSE,
        Exchange.BSE,
        Exchange.NFO,
        Exchange.BFO,
        Exchange.MCX,
        Exchange.CDS,
        Exchange.BCD,
    }
)
_SEARCH_LIMIT: Final = 50
DUMP_READY: Final = dt.time(8, 30)  # IST: when Kite publishes the day's instruments dump


def dump_edition(now: dt.datetime) -> dt.date:
    """The date of the newest dump at ``now``: today's from 08:30 IST, else yesterday's."""
    local = now.astimezone(IST)
    return local.date() if local.time() >= DUMP_READY else local.date() - dt.timedelta(days=1)


class KiteProvider:
    """``Provider`` for Kite Connect; see the module docstring."""

    name = "kite"
    # Backfill chunks of one request each: Kite's span limits (minute 60 days, day 2000).
    backfill_chunks: Final = {
        Timeframe.M1: dt.timedelta(days=MAX_SPAN_DAYS[KITE_INTERVALS[Timeframe.M1]]),
        Timeframe.D1: dt.timedelta(days=MAX_SPAN_DAYS[KITE_INTERVALS[Timeframe.D1]]),
    }

    def __init__(
        self, api: KiteApi, *, owned: Database | None = None, redis: Redis | None = None
    ) -> None:
        self.api = api
        self._owned = owned
        self._redis = redis
        self._dump: dict[str, Instrument] | None = None
        self._dump_edition: dt.date | None = None
        self._dump_lock = asyncio.Lock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        database: Database | None = None,
        on_outcome: OutcomeHook | None = None,
    ) -> KiteProvider:
        """The provider of ``QUANTDESK_KITE_API_KEY``, reading the day's token from the
        database (its own connection pool unless ``database`` is given); with Redis, its
        rate limits are shared with every other process using the key."""
        if settings.kite_api_key is None or not settings.kite_api_key.get_secret_value():
            raise InvalidInput("provider kite needs QUANTDESK_KITE_API_KEY", provider="kite")
        api_key = settings.kite_api_key.get_secret_value()
        owned: Database | None = None
        if database is None:
            owned = database = Database(settings)
        store = KiteTokenStore(database, PiiCipher.from_settings(settings), api_key)
        api = KiteApi(
            api_key, TokenSource(store), base_url=settings.kite_base_url, on_outcome=on_outcome
        )
        redis = None
        if settings.redis_url:
            redis = Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=2,
                socket_timeout=1,
                retry=Retry(NoBackoff(), 1),
                **redis_tls_options(settings),
            )
            api.use_shared_limits(redis)
        return cls(api, owned=owned, redis=redis)

    # ------------------------------------------------------------------ instruments

    async def instruments_csv(self) -> str:
        """Today's instruments dump (``GET /instruments``, CSV, a few MB), never cached: the
        daily import must see the morning's dump, not the one fetched yesterday at 09:00."""
        return await self.api.get_text(Endpoint.OTHER, "/instruments", ttl=0)

    async def _instruments(self) -> dict[str, Instrument]:
        """The dump by key, parsed once per dump (Kite publishes a new one at 08:30 IST)."""
        edition = dump_edition(dt.datetime.now(IST))
        async with self._dump_lock:
            if self._dump is None or self._dump_edition != edition:
                text = await self.instruments_csv()
                parsed = await asyncio.to_thread(parse_instruments, text, ImportFormat.KITE)
                self._dump = {instrument.key: instrument for instrument in parsed.instruments}
                self._dump_edition = edition
            return self._dump

    async def search_instruments(self, query: str) -> list[Instrument]:
        text = query.strip().upper()
        if not text:
            raise InvalidInput("search query must not be empty", provider=self.name)
        dump = await self._instruments()
        exact = [i for i in dump.values() if i.symbol == text]
        partial = [i for i in dump.values() if i.symbol != text and text in i.symbol]
        return (exact + sorted(partial, key=lambda i: (len(i.symbol), i.key)))[:_SEARCH_LIMIT]

    async def instrument_token(self, instrument: Instrument) -> int:
        if instrument.exchange not in KITE_EXCHANGES:
            raise InvalidInput(
                f"kite does not serve {instrument.exchange.value} instruments ({instrument.key})",
                provider=self.name,
            )
        token = instrument.provider_token
        if token is None or not token.isdigit():
            found = (await self._instruments()).get(instrument.key)
            if found is None or found.provider_token is None:
                raise NotFound(f"kite lists no instrument {instrument.key}", provider=self.name)
            token = found.provider_token
        return int(token)

    # ------------------------------------------------------------------ candles

    async def candles(
        self,
        instrument: Instrument,
        interval: str,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[Bar]:
        """Candles of any Kite interval over ``[start, end]``, one request per span window."""
        if interval not in MAX_SPAN_DAYS:
            raise InvalidInput(
                f"kite intervals are {', '.join(MAX_SPAN_DAYS)}, not {interval!r}",
                provider=self.name,
            )
        token = await self.instrument_token(instrument)
        daily = interval == "day"
        policy = self.api.policy
        ttl = policy.daily_bars_ttl if daily else policy.intraday_bars_ttl
        oi = 1 if wants_oi(instrument) else 0
        bars: list[Bar] = []
        for first, last in windows(interval, start, end):
            params: dict[str, str | int] = {
                "from": kite_time(first),
                "to": kite_time(last),
                "continuous": 0,
                "oi": oi,
            }
            bars.extend(
                await self.api.get(
                    Endpoint.HISTORICAL,
                    f"/instruments/historical/{token}/{interval}",
                    params,
                    ttl=ttl,
                    parse=lambda data: parse_candles(data, daily),
                )
            )
        return bars

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: dt.datetime, end: dt.datetime
    ) -> list[Bar]:
        check_bars_request(self.name, timeframe, start, end, KITE_INTERVALS)
        interval = KITE_INTERVALS[timeframe]
        if timeframe is Timeframe.D1:
            # A day bar's ts is 00:00 UTC of its session date, Kite stamps it 00:00 IST:
            # ask for the whole IST sessions whose dates the range covers.
            first = dt.datetime.combine(start.astimezone(dt.UTC).date(), dt.time(0), IST)
            last = dt.datetime.combine(end.astimezone(dt.UTC).date(), dt.time(23, 59, 59), IST)
            bars = await self.candles(instrument, interval, first, last)
        else:
            bars = await self.candles(instrument, interval, start, end)
        return bars_in_range(bars, start, end)

    # ------------------------------------------------------------------ quotes

    async def quotes(
        self, keys: Sequence[str], kind: QuoteKind = QuoteKind.FULL
    ) -> dict[str, Quote]:
        """Quotes of many instruments, in batches of Kite's per-request maximum."""
        found: dict[str, Quote] = {}
        for batch in batches(keys, kind.batch):
            found.update(
                await self.api.get(
                    Endpoint.QUOTE,
                    batch_url(kind, batch),
                    ttl=self.api.policy.quote_ttl,
                    parse=lambda data: parse_quotes(data, kind),
                )
            )
        return found

    async def quote(self, instrument: Instrument) -> Quote:
        if instrument.exchange not in KITE_EXCHANGES:
            raise InvalidInput(
                f"kite does not serve {instrument.exchange.value} instruments ({instrument.key})",
                provider=self.name,
            )
        found = await self.quotes([instrument.key])
        if instrument.key not in found:
            raise NotFound(f"kite has no quote for {instrument.key}", provider=self.name)
        return found[instrument.key]

    async def aclose(self) -> None:
        await self.api.aclose()
        if self._owned is not None:
            await self._owned.dispose()
        if self._redis is not None:
            await self._redis.aclose()
