"""Alpha Vantage (https://www.alphavantage.co/documentation/): US and BSE equities and ETFs.

One endpoint, ``GET /query?function=…&apikey=…`` (the key can only travel in the query
string; ``ProviderHttpClient`` adds it below httpx's logging):

* ``TIME_SERIES_DAILY&symbol=&outputsize=compact|full`` → ``{"Meta Data": {"2. Symbol", …},
  "Time Series (Daily)": {"2024-01-05": {"1. open": "…", …, "5. volume": "…"}}}``;
* ``TIME_SERIES_INTRADAY&symbol=&interval=1min&outputsize=full&month=YYYY-MM`` → the same
  with ``"Time Series (1min)"`` keyed by exchange-local ``"2024-01-05 15:59:00"`` and the zone
  in ``"Meta Data"."6. Time Zone"`` (``US/Eastern``); one request per calendar month;
* ``GLOBAL_QUOTE&symbol=`` → ``{"Global Quote": {"01. symbol", "05. price", "06. volume",
  "07. latest trading day", "08. previous close", "09. change", …}}``, ``{}`` when unknown;
* ``SYMBOL_SEARCH&keywords=`` → ``{"bestMatches": [{"1. symbol", "2. name", "3. type",
  "4. region", …, "8. currency"}]}``;
* ``FX_DAILY&from_symbol=USD&to_symbol=INR&outputsize=compact|full`` → ``{"Meta Data":
  {"2. From Symbol", "3. To Symbol", …}, "Time Series FX (Daily)": {"2024-01-05": {"1. open",
  …, "4. close"}}}`` (days in UTC; the close is the rate ``FxSource`` answers);
* ``LISTING_STATUS`` → CSV ``symbol,name,exchange,assetType,…`` fetched at most once a day to
  tell NYSE from NASDAQ listings, which the search does not say.

Errors arrive as HTTP 200: ``{"Error Message": …}`` (bad call or unknown symbol →
``UpstreamError``), ``{"Note": …}`` or ``{"Information": …}`` — rate limits, retried like a
429; the *daily* quota message is answered at once with ``ServiceUnavailable`` (retrying in
seconds cannot help); other ``Information`` (e.g. a premium-only endpoint) → ``UpstreamError``.

Symbols: ``NASDAQ:AAPL``/``NYSE:IBM`` → ``AAPL``/``IBM``; ``BSE:RELIANCE`` → ``RELIANCE.BSE``.
Alpha Vantage lists Indian equities on BSE only, so ``NSE:`` keys are refused, as are
indices, F&O and options.  A quote's ``ts`` is 00:00 UTC of the "latest trading day": Alpha
Vantage gives no time of day.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from quantdesk.marketdata.domain import Bar, Exchange, Instrument, InstrumentType, Quote, Timeframe
from quantdesk.marketdata.providers.base import FxDay, check_bars_request, check_fx_request
from quantdesk.marketdata.providers.http_client import (
    Credentials,
    HttpProvider,
    ProviderRateLimitedError,
)
from quantdesk.marketdata.providers.parsing import (
    EXCHANGE_TIMEZONE,
    bars_in_range,
    currency_of,
    exact_decimal,
    instrument_key_or_none,
    optional_decimal,
    session_day,
)
from quantdesk.marketdata.providers.resilience import ResiliencePolicy
from quantdesk.platform.exceptions import (
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    UpstreamError,
)

T = TypeVar("T")

ALPHAVANTAGE_BASE_URL: Final = "https://www.alphavantage.co"
# The free plan: 25 requests a day (and bursts of more than ~1/second are refused).
ALPHAVANTAGE_POLICY: Final = ResiliencePolicy(
    rate_limit="1/second;25/day", quote_ttl=60.0, intraday_bars_ttl=300.0
)
# "compact" holds the latest 100 sessions; 100 sessions span at least ~140 calendar days.
_COMPACT_SPAN: Final = timedelta(days=140)
_MAX_INTRADAY_MONTHS: Final = 12
_RATE_LIMIT_TEXT: Final = re.compile(
    r"rate limit|call frequency|calls per|requests per|spreading out|per (second|minute|day)",
    re.IGNORECASE,
)
_TYPES: Final = {"Equity": InstrumentType.EQUITY, "ETF": InstrumentType.ETF}
_US_VENUES: Final = {
    "NASDAQ": Exchange.NASDAQ,
    "NYSE": Exchange.NYSE,
    "NYSE ARCA": Exchange.NYSE,
    "NYSE MKT": Exchange.NYSE,
}


def alphavantage_symbol(instrument: Instrument) -> str:
    """Alpha Vantage's symbol for one of our instruments (see the module docstring)."""
    if instrument.type not in (InstrumentType.EQUITY, InstrumentType.ETF):
        raise InvalidInput(
            f"alphavantage serves equities and ETFs, not {instrument.type.value} instruments "
            f"({instrument.key})",
            provider="alphavantage",
        )
    if instrument.exchange in (Exchange.NYSE, Exchange.NASDAQ):
        return instrument.symbol
    if instrument.exchange is Exchange.BSE:
        return f"{instrument.symbol}.BSE"
    hint = f"; use BSE:{instrument.symbol}" if instrument.exchange is Exchange.NSE else ""
    raise InvalidInput(
        f"alphavantage does not serve {instrument.exchange.value} listings{hint}",
        provider="alphavantage",
    )


class AlphaVantageProvider(HttpProvider):
    """``Provider`` for Alpha Vantage's ``/query`` API."""

    name = "alphavantage"

    default_base_url = ALPHAVANTAGE_BASE_URL
    default_policy = ALPHAVANTAGE_POLICY

    @staticmethod
    def credentials(api_key: str) -> Credentials:
        return Credentials(secret_params={"apikey": api_key})

    async def _query(
        self, params: Mapping[str, str], ttl: float, parse: Callable[[dict[str, Any]], T]
    ) -> T:
        # ``_check`` lets only a JSON object through to ``parse``.
        return await self._http.fetch_json(
            "/query", params, ttl=ttl, check=self._check, parse=parse
        )

    def _check(self, payload: Any) -> None:
        """Alpha Vantage's in-band errors (HTTP 200 with a message)."""
        if not isinstance(payload, dict):
            raise self._http.malformed("answer is not a JSON object")
        for field in ("Note", "Information"):
            message = payload.get(field)
            if not isinstance(message, str):
                continue
            if _RATE_LIMIT_TEXT.search(message):
                lowered = message.lower()
                if "per day" in lowered and "per minute" not in lowered:
                    raise ServiceUnavailable(
                        "alphavantage's daily request quota is used up",
                        dependency=self._http.dependency,
                        retry_after=3600,
                    )
                raise ProviderRateLimitedError(f"rate-limited (HTTP 200 with {field!r})")
            raise UpstreamError(f"alphavantage: {self._http.scrub(message)}", provider=self.name)
        error = payload.get("Error Message")
        if isinstance(error, str):
            raise UpstreamError(
                f"alphavantage refused the request: {self._http.scrub(error)}", provider=self.name
            )

    async def quote(self, instrument: Instrument) -> Quote:
        symbol = alphavantage_symbol(instrument)

        def parse(payload: dict[str, Any]) -> Quote:
            quote = payload.get("Global Quote")
            if not isinstance(quote, dict):
                raise self._http.malformed("no 'Global Quote' object in the answer")
            if not quote:
                raise NotFound(f"alphavantage has no quote for {symbol}", provider=self.name)
            self._check_symbol(quote.get("01. symbol"), symbol)
            bad = self._http.malformed
            return Quote(
                key=instrument.key,
                last=exact_decimal(quote.get("05. price"), "05. price", bad),
                ts=session_day(self._date(quote.get("07. latest trading day"))),
                volume=optional_decimal(quote.get("06. volume"), "06. volume", bad),
                change=optional_decimal(quote.get("09. change"), "09. change", bad),
                prev_close=optional_decimal(
                    quote.get("08. previous close"), "08. previous close", bad
                ),
            )

        quote = await self._query(
            {"function": "GLOBAL_QUOTE", "symbol": symbol}, self._http.policy.quote_ttl, parse
        )
        return replace(quote, key=instrument.key)

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_bars_request(self.name, timeframe, start, end)
        symbol = alphavantage_symbol(instrument)
        policy = self._http.policy
        if timeframe is Timeframe.D1:
            compact = start >= datetime.now(UTC) - _COMPACT_SPAN
            bars = await self._query(
                {
                    "function": "TIME_SERIES_DAILY",
                    "symbol": symbol,
                    "outputsize": "compact" if compact else "full",
                },
                policy.daily_bars_ttl,
                lambda payload: self._series(payload, symbol, "Time Series (Daily)", daily=True),
            )
            return bars_in_range(bars, start, end)
        zone = EXCHANGE_TIMEZONE[instrument.exchange]
        months = list(_months(start.astimezone(zone).date(), end.astimezone(zone).date()))
        if len(months) > _MAX_INTRADAY_MONTHS:
            raise InvalidInput(
                f"alphavantage: at most {_MAX_INTRADAY_MONTHS} months of 1m bars per request",
                provider=self.name,
            )
        bars = []
        for month in months:
            page = await self._query(
                {
                    "function": "TIME_SERIES_INTRADAY",
                    "symbol": symbol,
                    "interval": "1min",
                    "outputsize": "full",
                    "month": month,
                },
                policy.intraday_bars_ttl,
                lambda payload: self._series(payload, symbol, "Time Series (1min)", daily=False),
            )
            bars.extend(page)
        return bars_in_range(bars, start, end)

    def _series(self, payload: dict[str, Any], symbol: str, key: str, *, daily: bool) -> list[Bar]:
        bad = self._http.malformed
        meta, series = payload.get("Meta Data"), payload.get(key)
        if not isinstance(meta, dict) or not isinstance(series, dict):
            raise bad(f"answer lacks 'Meta Data' or {key!r}")
        self._check_symbol(meta.get("2. Symbol"), symbol)
        zone = None if daily else self._zone(meta.get("6. Time Zone"))
        bars = []
        for stamp, row in series.items():
            if not isinstance(row, dict):
                raise bad(f"bar {stamp!r} is not an object")
            ts = session_day(self._date(stamp)) if zone is None else self._local_minute(stamp, zone)
            bars.append(
                Bar(
                    ts=ts,
                    open=exact_decimal(row.get("1. open"), f"{stamp} open", bad),
                    high=exact_decimal(row.get("2. high"), f"{stamp} high", bad),
                    low=exact_decimal(row.get("3. low"), f"{stamp} low", bad),
                    close=exact_decimal(row.get("4. close"), f"{stamp} close", bad),
                    volume=exact_decimal(row.get("5. volume"), f"{stamp} volume", bad),
                )
            )
        return bars

    async def fx_daily(self, base: str, quote: str, start: date, end: date) -> list[FxDay]:
        check_fx_request(self.name, base, quote, start, end)
        pair = (base.upper(), quote.upper())
        compact = start >= datetime.now(UTC).date() - _COMPACT_SPAN

        def parse(payload: dict[str, Any]) -> list[FxDay]:
            bad = self._http.malformed
            meta, series = payload.get("Meta Data"), payload.get("Time Series FX (Daily)")
            if not isinstance(meta, dict) or not isinstance(series, dict):
                raise bad("answer lacks 'Meta Data' or 'Time Series FX (Daily)'")
            self._check_symbol(f"{meta.get('2. From Symbol')}/{meta.get('3. To Symbol')}",
                               "/".join(pair))  # fmt: skip
            days = []
            for stamp, row in series.items():
                if not isinstance(row, dict):
                    raise bad(f"rate {stamp!r} is not an object")
                close = exact_decimal(row.get("4. close"), f"{stamp} close", bad)
                days.append(FxDay(self._date(stamp), close))
            return days

        days = await self._query(
            {"function": "FX_DAILY", "from_symbol": pair[0], "to_symbol": pair[1],
             "outputsize": "compact" if compact else "full"},
            self._http.policy.daily_bars_ttl, parse,
        )  # fmt: skip
        return sorted((d for d in days if start <= d.day <= end), key=lambda d: d.day)

    def _check_symbol(self, answered: object, asked: str) -> None:
        if not isinstance(answered, str) or answered.upper() != asked.upper():
            raise UpstreamError(
                f"alphavantage answered for {answered!r} when asked for {asked!r}",
                provider=self.name,
            )

    def _date(self, value: object) -> date:
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self._http.malformed(f"{value!r} is not a date") from None

    def _zone(self, value: object) -> ZoneInfo:
        try:
            return ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise self._http.malformed(f"unknown time zone {value!r}") from None

    def _local_minute(self, value: str, zone: ZoneInfo) -> datetime:
        try:
            local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise self._http.malformed(f"{value!r} is not a 'YYYY-MM-DD HH:MM:SS' time") from None
        return local.replace(tzinfo=zone).astimezone(UTC)

    async def search_instruments(self, query: str) -> list[Instrument]:
        text = query.strip()
        if not text:
            raise InvalidInput("search query must not be empty", provider=self.name)
        rows = await self._query(
            {"function": "SYMBOL_SEARCH", "keywords": text},
            self._http.policy.reference_ttl,
            self._matches,
        )
        needs_us = any(m.get("4. region") == "United States" for m in rows)
        listing = await self._us_listing() if needs_us else {}
        found = []
        for match in rows:
            instrument = _instrument_from_match(match, listing)
            if instrument is not None:
                found.append(instrument)
        return found

    def _matches(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        matches = payload.get("bestMatches")
        if not isinstance(matches, list):
            raise self._http.malformed("search answer has no 'bestMatches' list")
        return [m for m in matches if isinstance(m, dict)]

    async def _us_listing(self) -> dict[str, Exchange]:
        return await self._http.fetch_text(
            "/query",
            {"function": "LISTING_STATUS"},
            ttl=self._http.policy.reference_ttl,
            parse=self._parse_listing,
        )

    def _parse_listing(self, text: str) -> dict[str, Exchange]:
        """Symbol → our venue from the listing CSV (whose errors come as JSON)."""
        if text.lstrip().startswith("{"):
            try:
                payload = json.loads(text)
            except ValueError:
                raise self._http.malformed("listing is neither CSV nor JSON") from None
            self._check(payload)
            raise self._http.malformed("listing came as JSON, not CSV")
        if not text.startswith("symbol,"):
            raise self._http.malformed("listing CSV lacks its 'symbol,…' header")
        listing: dict[str, Exchange] = {}
        for row in csv.DictReader(io.StringIO(text)):
            exchange = _US_VENUES.get((row.get("exchange") or "").upper())
            if exchange is not None and row.get("symbol"):
                listing[row["symbol"]] = exchange
        return listing


def _instrument_from_match(
    match: Mapping[str, Any], us_listing: Mapping[str, Exchange]
) -> Instrument | None:
    symbol, name = match.get("1. symbol"), match.get("2. name")
    kind = _TYPES.get(str(match.get("3. type")))
    if not isinstance(symbol, str) or not isinstance(name, str) or kind is None:
        return None
    exchange: Exchange | None
    if symbol.endswith(".BSE"):
        exchange, ours = Exchange.BSE, symbol.removesuffix(".BSE")
    else:
        exchange, ours = us_listing.get(symbol), symbol
    if exchange is None or instrument_key_or_none(exchange, ours) is None:
        return None  # a venue we do not model (London, Toronto, …)
    return Instrument(
        exchange=exchange,
        symbol=ours.upper(),
        name=name,
        type=kind,
        currency=currency_of(exchange),
        provider_token=symbol,
    )


def _months(first: date, last: date) -> Iterator[str]:
    """``YYYY-MM`` of every calendar month from ``first``'s to ``last``'s, inclusive."""
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
